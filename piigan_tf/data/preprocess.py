"""Bringing an image to a model's input size: one rule for training, inference and evaluation.

A model sees its images at ``IMG_SHAPES`` (``th x tw``), brought there the
way its config says:

* ``RANDOM_CROP: false``: the whole image resized to ``th x tw`` (bilinear,
  rounded back to uint8: :func:`resize_image`);
* ``RANDOM_CROP: true``: a ``th x tw`` window at native scale; an image
  smaller than that on a side is first scaled up (bilinear) by
  ``s = max(th/h, tw/w)`` to ``(ceil(h·s), ceil(w·s))`` (the reference's
  neuralgym ``np_random_crop``). Training takes a random window
  (:func:`random_crop_image`); inference, evaluation and the demo the centre
  one (:func:`center_crop_image`), the same scaling. Evaluation can also take
  several evenly spread windows of each image (:func:`grid_windows`).

The training pipeline (``piigan_tf.data.pipeline``) runs these functions in
its graph; :func:`fit_to_model` and :func:`bring_to_size` run the same ones on
a numpy image, so that training and sampling bring pixels to the model
identically.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["CROPS", "bring_to_size", "center_crop_image", "crop_window", "fit_to_model",
           "grid_windows", "model_crop", "random_crop_image", "resize_image"]

#: How an image is brought to a model's size: ``resize`` (the whole image,
#: as training with ``RANDOM_CROP: false``), ``center`` (the centre window at
#: native scale) or ``random`` (the training RANDOM_CROP, seeded).
CROPS = ("resize", "center", "random")


def model_crop(config) -> str:
    """The deterministic crop that matches a model's training preprocessing."""
    return "center" if config.RANDOM_CROP else "resize"


def resize_image(image: tf.Tensor, size_hw) -> tf.Tensor:
    """Bilinear resize of a uint8 image (as ``cv2.resize`` INTER_LINEAR), rounded back to uint8."""
    resized = tf.image.resize(image, size_hw, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _covering_size(height, width, target_hw):
    """``(needs_scaling, scaled_h, scaled_w)``: the size an image is scaled to before cropping."""
    target_h, target_w = target_hw
    h = tf.cast(height, tf.float64)
    w = tf.cast(width, tf.float64)
    # float64 like the reference's Python arithmetic, so ceil() agrees exactly.
    scale = tf.maximum(target_h / h, target_w / w)
    needs_scaling = (height < target_h) | (width < target_w)
    covering_h = tf.maximum(tf.cast(tf.math.ceil(h * scale), tf.int32), target_h)
    covering_w = tf.maximum(tf.cast(tf.math.ceil(w * scale), tf.int32), target_w)
    return (needs_scaling, tf.where(needs_scaling, covering_h, height),
            tf.where(needs_scaling, covering_w, width))


def crop_window(height, width, target_hw, seed):
    """Scaled size and crop offsets, from the source size alone.

    Both the full-decode and the partial-JPEG paths call this, so they pick the
    same window for the same seed.

    Returns:
        ``(needs_scaling, scaled_h, scaled_w, top, left)`` int32 scalars.
    """
    target_h, target_w = target_hw
    needs_scaling, scaled_h, scaled_w = _covering_size(height, width, target_hw)
    seed_top, seed_left = tf.unstack(tf.random.split(seed, 2))
    top = tf.random.stateless_uniform([], seed_top, 0, scaled_h - target_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seed_left, 0, scaled_w - target_w + 1, dtype=tf.int32)
    return needs_scaling, scaled_h, scaled_w, top, left


def random_crop_image(image: tf.Tensor, target_hw: Sequence[int], seed) -> tf.Tensor:
    """The reference RANDOM_CROP on a decoded image.

    Images smaller than the target on a side are scaled up (keeping aspect) to
    cover it, then a uniformly random ``target_hw`` window is cut at native scale.

    Args:
        image: uint8 ``[h, w, 3]``.
        target_hw: ``(th, tw)``.
        seed: int32/int64 ``[2]`` stateless seed for the window position.

    Returns:
        uint8 ``[th, tw, 3]``.
    """
    target_h, target_w = (int(v) for v in target_hw)
    shape = tf.shape(image)
    needs_scaling, scaled_h, scaled_w, top, left = crop_window(
        shape[0], shape[1], (target_h, target_w), seed
    )
    image = tf.cond(
        needs_scaling, lambda: resize_image(image, tf.stack([scaled_h, scaled_w])), lambda: image
    )
    crop = image[top : top + target_h, left : left + target_w]
    crop.set_shape([target_h, target_w, 3])
    return crop



def center_crop_image(image: tf.Tensor, target_hw: Sequence[int]) -> tf.Tensor:
    """The centre ``target_hw`` window, scaled up first as :func:`random_crop_image` does.

    Args:
        image: uint8 ``[h, w, 3]``.
        target_hw: ``(th, tw)``.

    Returns:
        uint8 ``[th, tw, 3]``.
    """
    target_h, target_w = (int(v) for v in target_hw)
    shape = tf.shape(image)
    needs_scaling, scaled_h, scaled_w = _covering_size(shape[0], shape[1], (target_h, target_w))
    image = tf.cond(
        needs_scaling, lambda: resize_image(image, tf.stack([scaled_h, scaled_w])), lambda: image
    )
    top, left = (scaled_h - target_h) // 2, (scaled_w - target_w) // 2
    crop = image[top : top + target_h, left : left + target_w]
    crop.set_shape([target_h, target_w, 3])
    return crop


def grid_windows(image: np.ndarray, hw: Sequence[int], per_side: int = 2
                 ) -> list[tuple[tuple[int, int], np.ndarray]]:
    """``per_side`` x ``per_side`` windows of ``hw`` at native scale, evenly spread.

    The first and last window of a row (column) touch the image's left and
    right (top and bottom) edges; one window a side is the centre one. An
    image smaller than ``hw`` on a side is scaled up first, as
    :func:`center_crop_image` does; windows overlap where the image is
    smaller than ``per_side`` windows a side.

    Args:
        image: uint8 RGB ``[h, w, 3]``.
        hw: ``(H, W)``, the window size.
        per_side: Windows a row and a column (at least 1).

    Returns:
        ``[((top, left), window), ...]`` row by row, the corners in the
        (scaled) image and uint8 ``[H, W, 3]`` windows.
    """
    if per_side < 1:
        raise ValueError(f"per_side must be at least 1, got {per_side}")
    th, tw = (int(v) for v in hw)
    image = np.asarray(image, np.uint8)
    needs_scaling, scaled_h, scaled_w = (
        int(v) for v in _covering_size(image.shape[0], image.shape[1], (th, tw)))
    if needs_scaling:
        image = resize_image(tf.constant(image), (scaled_h, scaled_w)).numpy()

    def starts(size, side):
        if per_side == 1:
            return [(size - side) // 2]
        return [int(v) for v in np.linspace(0, size - side, per_side).round()]

    return [((y, x), np.ascontiguousarray(image[y:y + th, x:x + tw]))
            for y in starts(scaled_h, th) for x in starts(scaled_w, tw)]


def bring_to_size(image: np.ndarray, hw: Sequence[int], crop: str = "resize",
                  seed: Sequence[int] | None = None) -> np.ndarray:
    """A uint8 ``[h, w, 3]`` image brought to ``hw`` by one of :data:`CROPS`.

    Args:
        image: uint8 RGB ``[h, w, 3]``.
        hw: ``(H, W)``.
        crop: ``"resize"``, ``"center"`` or ``"random"`` (then ``seed``, a
            stateless seed pair, picks the window as the training pipeline does).

    Returns:
        uint8 ``[H, W, 3]``, the pixels the training pipeline would produce.
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    hw = tuple(int(v) for v in hw)
    image = tf.constant(np.asarray(image, np.uint8))
    if crop == "resize":
        out = resize_image(image, hw)
    elif crop == "center":
        out = center_crop_image(image, hw)
    else:
        out = random_crop_image(image, hw, tf.constant(seed, tf.int64))
    return np.ascontiguousarray(out.numpy())


def fit_to_model(image: np.ndarray, config) -> np.ndarray:
    """An image brought to a model's training size as its training pipeline did.

    Resized whole for a model trained with ``RANDOM_CROP: false``, else the
    centre window at native scale (scaled up first if smaller).
    """
    return bring_to_size(image, config.img_hw, model_crop(config))
