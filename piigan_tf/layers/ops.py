"""Small tensor ops shared by the networks, losses and data code.

All of them are core TensorFlow ops (no ``py_func``), so graphs that use them
export to a SavedModel that the C++ TF Serving binary runs.
"""

from __future__ import annotations

import tensorflow as tf


def align_corners_indices(in_size, out_size) -> tf.Tensor:
    """Source indices of an align-corners nearest resize along one axis.

    Reproduces TensorFlow's ``ResizeNearestNeighbor(align_corners=True)``
    bit for bit: ``scale = float32(in - 1) / float32(out - 1)``, source index
    ``min(roundf(o * scale), in - 1)`` with ``roundf`` rounding halves away
    from zero (``tf.round`` would round them to even).
    """
    in_size = tf.convert_to_tensor(in_size, tf.int32)
    out_size = tf.convert_to_tensor(out_size, tf.int32)
    scale = tf.where(out_size > 1,
                     tf.cast(in_size - 1, tf.float32) / tf.cast(tf.maximum(out_size - 1, 1), tf.float32),
                     0.0)
    pos = tf.cast(tf.range(out_size), tf.float32) * scale
    low = tf.floor(pos)
    idx = tf.cast(low, tf.int32) + tf.cast(pos - low >= 0.5, tf.int32)
    return tf.minimum(idx, in_size - 1)


def resize_nearest(x: tf.Tensor, size) -> tf.Tensor:
    """Nearest-neighbour resize with ``align_corners=True``, as the reference.

    neuralgym's ``resize`` (used for every nearest resize in PiiGAN) passes
    ``align_corners=True``: output index ``o`` reads source index
    ``round(o * (in - 1) / (out - 1))``. For 128 -> 64 that is rows 0, 2, ..., 62,
    then 65, 67, ..., 127 -- not ``x[::2]``. Written as two gathers rather than
    the ``ResizeNearestNeighbor`` op: same values (tested against the op), but
    its gradient is a plain scatter-add that XLA compiles, whereas
    ``ResizeNearestNeighborGrad`` has no XLA kernel.

    Args:
        x: [B, H, W, C] tensor.
        size: (out_h, out_w), ints or scalar int tensors.

    Returns:
        [B, out_h, out_w, C] tensor of x's dtype.
    """
    shape = tf.shape(x)
    rows = align_corners_indices(shape[1], size[0])
    cols = align_corners_indices(shape[2], size[1])
    return tf.gather(tf.gather(x, rows, axis=1), cols, axis=2)


def upsample2x(x: tf.Tensor) -> tf.Tensor:
    """2x nearest upsampling. With align_corners it is plain repetition."""
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


def crop_boxes(x: tf.Tensor, boxes: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Crops a fixed-size window per sample (the reference's ``local_patch``).

    Args:
        x: [B, H, W, C].
        boxes: int32 [B, 4] of (top, left, height, width); only top/left are
            read, the window size is the static ``height`` x ``width``.

    Returns:
        [B, height, width, C]; differentiable with respect to ``x``.
    """
    rows = boxes[:, 0:1] + tf.range(height, dtype=boxes.dtype)[None, :]
    cols = boxes[:, 1:2] + tf.range(width, dtype=boxes.dtype)[None, :]
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def paste_boxes(patch: tf.Tensor, boxes: tf.Tensor, full_hw) -> tf.Tensor:
    """Zero-pads per-sample patches back to full size (inverse of crop_boxes).

    The reference pads the extractor's z back with ``tf.pad`` around its one
    fixed box; with per-sample boxes this is a product with one-hot row and
    column selectors, which stays vectorised and differentiable.

    Args:
        patch: [B, h, w, C].
        boxes: int32 [B, 4] (top, left, ...).
        full_hw: (H, W) of the output.

    Returns:
        [B, H, W, C] with ``patch`` at each box and zeros elsewhere.
    """
    shape = tf.shape(patch)
    h, w = shape[1], shape[2]
    rows = tf.one_hot(boxes[:, 0:1] + tf.range(h)[None, :], full_hw[0], dtype=patch.dtype)  # [B,h,H]
    cols = tf.one_hot(boxes[:, 1:2] + tf.range(w)[None, :], full_hw[1], dtype=patch.dtype)  # [B,w,W]
    return tf.einsum("bhH,bhwc,bwW->bHWc", rows, patch, cols)
