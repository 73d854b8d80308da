"""Small tensor ops shared by the networks, losses and data code.

All of them are core TensorFlow ops (no ``py_func``), so graphs that use them
export to a SavedModel that the C++ TF Serving binary runs.
"""

from __future__ import annotations

import tensorflow as tf


def resize_nearest(x: tf.Tensor, size) -> tf.Tensor:
    """Nearest-neighbour resize with ``align_corners=True``, as the reference.

    neuralgym's ``resize`` (used for every nearest resize in PiiGAN) passes
    ``align_corners=True``: output index ``o`` reads source index
    ``round(o * (in - 1) / (out - 1))``. For 128 -> 64 that is rows 0, 2, ..., 62,
    then 65, 67, ..., 127 -- not ``x[::2]``. ``ResizeNearestNeighbor`` is a core
    op (XLA and TF Serving run it), so we call it (through ``tf.raw_ops``, as
    the public v1 wrapper is deprecated) rather than re-deriving the indices.

    Args:
        x: [B, H, W, C] tensor.
        size: (out_h, out_w), ints or scalar int tensors.

    Returns:
        [B, out_h, out_w, C] tensor of x's dtype.
    """
    size = tf.cast(tf.stack([size[0], size[1]]), tf.int32)
    return tf.raw_ops.ResizeNearestNeighbor(images=x, size=size, align_corners=True,
                                            half_pixel_centers=False)


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
