"""Hole masks for training and evaluation.

Masks are float32 ``{0, 1}`` with **1 = hole** (missing pixels), shape
``[H, W, 1]`` (or ``[B, H, W, 1]`` batched). Every mask comes with the
``box`` ``(top, left, height, width)`` int32 of the fixed-size local patch that
contains the hole: the local critic and the extractor read that patch.

Everything here except :func:`load_mask_file` is pure TensorFlow with
stateless random ops, so it runs inside ``tf.data`` maps, ``tf.function`` and
exported graphs (no ``py_func``), and a given seed always gives the same masks.

Mask types, one function each (:func:`make_masks` picks one by name;
:func:`image_mask` gives one uint8 mask for a user's image of any size):

* ``"center"`` — the reference test.py's hole (:func:`center_masks`): the
  whole ``box_hw`` box at the image centre, no jitter, no randomness.
* ``"box"`` — the reference training default (DeepFill v1 ``bbox2mask`` on a fixed
  box): a ``box_hw`` box centred in the image whose sides each shrink by a
  random ``0..max_delta//2`` pixels (the same amount top and bottom, and left
  and right); :func:`box_masks`.
* ``"random_box"`` — the same jittered hole in a box placed uniformly at
  random within the margins (the reference ``random_bbox``);
  :func:`random_box_masks`.
* ``"free_form"`` — **port addition**: random-walk brush strokes inside a
  randomly placed box; :func:`free_form_masks`.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

MASK_TYPES = ("center", "box", "random_box", "free_form")
#: The mask types that draw a different hole per seed.
RANDOM_MASK_TYPES = ("box", "random_box", "free_form")

# free-form stroke parameters (relative to the shorter box side `s`).
_MAX_STROKES = 4  # 1..4 strokes per mask
_MIN_VERTICES, _MAX_VERTICES = 3, 6  # 2..5 segments per stroke
_MAX_TURN = 0.6 * math.pi  # random-walk turn per segment, radians
_SEG_LEN = (1.0 / 6.0, 2.0 / 5.0)  # segment length range, times s
_RADIUS = (1.0 / 24.0, 1.0 / 10.0)  # brush radius range, times s
# minimum fraction of the box that a free-form hole covers.
FREE_FORM_MIN_COVERAGE = 0.05

_SeedLike = tf.Tensor | Sequence[int] | np.ndarray


def _pair(value: Sequence[int], name: str) -> tuple[int, int]:
    """Validates a (height, width) pair of Python ints."""
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a pair of ints (height, width), got {value!r}") from exc
    return a, b


def validate_mask_args(
    img_hw: Sequence[int],
    box_hw: Sequence[int],
    max_delta_hw: Sequence[int],
    margins_hw: Sequence[int],
    mask_type: str,
) -> tuple[tuple[int, int], ...]:
    """Checks mask arguments (see :func:`make_masks`) and returns them as int pairs.

    Raises:
        ValueError: For an unknown ``mask_type`` (listing the valid ones) or
            sizes that do not fit the image.
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f"Unknown mask_type {mask_type!r}; valid options are {MASK_TYPES}.")
    img_h, img_w = _pair(img_hw, "img_hw")
    box_h, box_w = _pair(box_hw, "box_hw")
    delta_h, delta_w = _pair(max_delta_hw, "max_delta_hw")
    margin_h, margin_w = _pair(margins_hw, "margins_hw")
    if min(box_h, box_w) <= 0 or box_h > img_h or box_w > img_w:
        raise ValueError(f"box_hw {box_hw} must be positive and fit in img_hw {img_hw}.")
    if min(delta_h, delta_w, margin_h, margin_w) < 0:
        raise ValueError("max_delta_hw and margins_hw must be non-negative.")
    # The jitter removes up to 2 * (delta // 2) rows; keep at least one hole row.
    if mask_type != "center" and (2 * (delta_h // 2) >= box_h or 2 * (delta_w // 2) >= box_w):
        raise ValueError(f"max_delta_hw {max_delta_hw} would shrink the {box_hw} box to nothing.")
    if mask_type in ("random_box", "free_form") and (2 * margin_h + box_h > img_h or 2 * margin_w + box_w > img_w):
        raise ValueError(
            f"box_hw {box_hw} plus margins {margins_hw} on both sides exceed img_hw {img_hw}."
        )
    return (img_h, img_w), (box_h, box_w), (delta_h, delta_w), (margin_h, margin_w)


def _seed_tensor(seed: _SeedLike) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        seed = tf.cast(seed, tf.int64)
    return seed


def _uniform_int(seed: tf.Tensor, shape, low: int, high: int) -> tf.Tensor:
    """Integers uniform in ``[low, high)``; ``low`` when the range is empty."""
    if high <= low + 1:
        return tf.fill(shape, tf.constant(low, tf.int32))
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high, dtype=tf.int32)


def _range_masks(size: int, start: tf.Tensor, stop: tf.Tensor) -> tf.Tensor:
    """``[B, size]`` bool, true where ``start[b] <= i < stop[b]``."""
    index = tf.range(size, dtype=tf.int32)[tf.newaxis, :]
    return (index >= start[:, tf.newaxis]) & (index < stop[:, tf.newaxis])


def _rect_masks(img_hw, top, left, height, width) -> tf.Tensor:
    """Batched rectangle masks ``[B, H, W, 1]`` float32 from ``[B]`` int32 vectors."""
    rows = _range_masks(img_hw[0], top, top + height)
    cols = _range_masks(img_hw[1], left, left + width)
    inside = rows[:, :, tf.newaxis] & cols[:, tf.newaxis, :]
    return tf.cast(inside, tf.float32)[..., tf.newaxis]


def box_mask(img_hw: Sequence[int], top, left, h, w) -> tf.Tensor:
    """Mask of one rectangle.

    Args:
        img_hw: ``(H, W)`` of the image, Python ints.
        top: First hole row (int or scalar int tensor).
        left: First hole column.
        h: Hole height; rows ``[top, top + h)`` are holes.
        w: Hole width; columns ``[left, left + w)`` are holes.

    Returns:
        float32 ``[H, W, 1]``, 1 inside the rectangle (clipped to the image).
    """
    img_hw = _pair(img_hw, "img_hw")
    args = [tf.reshape(tf.cast(v, tf.int32), [1]) for v in (top, left, h, w)]
    return _rect_masks(img_hw, *args)[0]


def _jittered_holes(seed, batch, img_hw, box_hw, delta_hw, top, left):
    """bbox2mask: the box shrunk by a random ``0..delta//2`` on each side."""
    seed_h, seed_w = tf.unstack(tf.random.split(seed, 2))
    dh = _uniform_int(seed_h, [batch], 0, delta_hw[0] // 2 + 1)
    dw = _uniform_int(seed_w, [batch], 0, delta_hw[1] // 2 + 1)
    return _rect_masks(img_hw, top + dh, left + dw, box_hw[0] - 2 * dh, box_hw[1] - 2 * dw)


def _segment_distances(points_y, points_x, starts, ends):
    """Distance from every point to every segment.

    Args:
        points_y: ``[h, 1]`` float row coordinates.
        points_x: ``[1, w]`` float column coordinates.
        starts: ``[B, N, 2]`` segment starts (y, x).
        ends: ``[B, N, 2]`` segment ends.

    Returns:
        ``[B, h, w, N]`` float32 distances.
    """
    ay = starts[:, tf.newaxis, tf.newaxis, :, 0]
    ax = starts[:, tf.newaxis, tf.newaxis, :, 1]
    dy = ends[:, tf.newaxis, tf.newaxis, :, 0] - ay
    dx = ends[:, tf.newaxis, tf.newaxis, :, 1] - ax
    py = points_y[tf.newaxis, :, :, tf.newaxis] - ay
    px = points_x[tf.newaxis, :, :, tf.newaxis] - ax
    # Projection onto the segment, clamped to its ends (gives round caps).
    length_sq = tf.maximum(dy * dy + dx * dx, 1e-6)
    t = tf.clip_by_value((py * dy + px * dx) / length_sq, 0.0, 1.0)
    return tf.sqrt(tf.square(py - t * dy) + tf.square(px - t * dx))


def _free_form_strokes(seed, batch, box_hw) -> tf.Tensor:
    """Random-walk brush strokes rasterised in box coordinates: ``[B, h, w]`` bool.

    Each sample draws 1..4 strokes; a stroke is a random walk of 2..5 segments
    (each turning by up to ±0.6π) drawn with a round brush of random radius.
    Pixels closer than the radius to a segment are holes. Everything is a
    fixed-size tensor computation, so it vectorises over the batch and exports.
    """
    box_h, box_w = box_hw
    side = float(min(box_h, box_w))
    num_seg = _MAX_VERTICES - 1
    seeds = tf.random.split(seed, 8)
    num_strokes = _uniform_int(seeds[0], [batch], 1, _MAX_STROKES + 1)
    num_vertices = _uniform_int(seeds[1], [batch, _MAX_STROKES], _MIN_VERTICES, _MAX_VERTICES + 1)
    unit = tf.random.stateless_uniform([batch, _MAX_STROKES, 2], seeds[2])
    start = unit * tf.constant([box_h - 1.0, box_w - 1.0])
    heading = tf.random.stateless_uniform([batch, _MAX_STROKES, 1], seeds[3], 0.0, 2.0 * math.pi)
    turns = tf.random.stateless_uniform([batch, _MAX_STROKES, num_seg], seeds[4], -_MAX_TURN, _MAX_TURN)
    angles = heading + tf.cumsum(turns, axis=-1)
    lengths = tf.random.stateless_uniform(
        [batch, _MAX_STROKES, num_seg], seeds[5], _SEG_LEN[0] * side, _SEG_LEN[1] * side
    )
    radius = tf.random.stateless_uniform(
        [batch, _MAX_STROKES, 1],
        seeds[6],
        max(1.0, _RADIUS[0] * side),
        max(1.5, _RADIUS[1] * side),
    )
    steps = tf.stack([lengths * tf.sin(angles), lengths * tf.cos(angles)], axis=-1)
    # Vertices are clipped to the box so the walk slides along its edges
    # instead of leaving it (the raster is confined to the box anyway).
    walk = start[:, :, tf.newaxis, :] + tf.cumsum(steps, axis=2)
    walk = tf.clip_by_value(walk, 0.0, tf.constant([box_h - 1.0, box_w - 1.0]))
    vertices = tf.concat([start[:, :, tf.newaxis, :], walk], axis=2)  # [B, S, V, 2]

    stroke_on = tf.range(_MAX_STROKES)[tf.newaxis, :] < num_strokes[:, tf.newaxis]
    segment_on = tf.range(num_seg)[tf.newaxis, tf.newaxis, :] < (num_vertices - 1)[..., tf.newaxis]
    active = stroke_on[..., tf.newaxis] & segment_on  # [B, S, V-1]

    flat = _MAX_STROKES * num_seg
    starts = tf.reshape(vertices[:, :, :-1], [batch, flat, 2])
    ends = tf.reshape(vertices[:, :, 1:], [batch, flat, 2])
    radii = tf.reshape(tf.broadcast_to(radius, [batch, _MAX_STROKES, num_seg]), [batch, flat])
    # Inactive segments get radius -1 so no pixel can be within it.
    radii = tf.where(tf.reshape(active, [batch, flat]), radii, -1.0)

    rows = tf.range(box_h, dtype=tf.float32)[:, tf.newaxis]
    cols = tf.range(box_w, dtype=tf.float32)[tf.newaxis, :]
    distances = _segment_distances(rows, cols, starts, ends)
    return tf.reduce_any(distances < radii[:, tf.newaxis, tf.newaxis, :], axis=-1)


def _ensure_coverage(strokes: tf.Tensor, box_hw) -> tf.Tensor:
    """Adds a centred blob where strokes cover < FREE_FORM_MIN_COVERAGE of the box.

    Short thin strokes can cover very little; the centred rectangle of side
    ``ceil(sqrt(min) * side)`` guarantees the minimum coverage exactly.
    """
    box_h, box_w = box_hw
    blob_h = min(box_h, math.ceil(math.sqrt(FREE_FORM_MIN_COVERAGE) * box_h))
    blob_w = min(box_w, math.ceil(math.sqrt(FREE_FORM_MIN_COVERAGE) * box_w))
    blob = np.zeros([box_h, box_w], bool)
    top, left = (box_h - blob_h) // 2, (box_w - blob_w) // 2
    blob[top : top + blob_h, left : left + blob_w] = True
    coverage = tf.reduce_mean(tf.cast(strokes, tf.float32), axis=[1, 2])
    too_small = (coverage < FREE_FORM_MIN_COVERAGE)[:, tf.newaxis, tf.newaxis]
    return strokes | (too_small & tf.constant(blob))


def _paste_into_image(local: tf.Tensor, img_hw, box_hw, top, left) -> tf.Tensor:
    """Places ``[B, h, w]`` box-local masks at (top, left): ``[B, H, W, 1]`` float32."""
    rows = tf.clip_by_value(tf.range(img_hw[0])[tf.newaxis, :] - top[:, tf.newaxis], 0, box_hw[0] - 1)
    cols = tf.clip_by_value(tf.range(img_hw[1])[tf.newaxis, :] - left[:, tf.newaxis], 0, box_hw[1] - 1)
    image = tf.gather(local, rows, axis=1, batch_dims=1)  # [B, H, w]
    image = tf.gather(image, cols, axis=2, batch_dims=1)  # [B, H, W]
    box_h, box_w = tf.fill(tf.shape(top), box_hw[0]), tf.fill(tf.shape(top), box_hw[1])
    box = _rect_masks(img_hw, top, left, box_h, box_w)
    return tf.cast(image, tf.float32)[..., tf.newaxis] * box


def _centred_corner(batch, img_hw, box_hw) -> tuple[tf.Tensor, tf.Tensor]:
    """``(top, left)`` ``[B]`` of a ``box_hw`` box centred in the image."""
    # (32, 32) for 128/64, i.e. the reference's (HEIGHT//2, WIDTH//2).
    return (tf.fill([batch], (img_hw[0] - box_hw[0]) // 2),
            tf.fill([batch], (img_hw[1] - box_hw[1]) // 2))


def _random_corner(seed, batch, img_hw, box_hw, margins_hw) -> tuple[tf.Tensor, tf.Tensor]:
    """``(top, left)`` ``[B]`` uniform within the margins (the reference ``random_bbox``)."""
    seed_top, seed_left = tf.unstack(tf.random.split(seed, 2))
    # Exclusive upper bound as in the reference random_bbox.
    top = _uniform_int(seed_top, [batch], margins_hw[0], img_hw[0] - margins_hw[0] - box_hw[0])
    left = _uniform_int(seed_left, [batch], margins_hw[1], img_hw[1] - margins_hw[1] - box_hw[1])
    return top, left


def _with_boxes(masks, batch, box_hw, top, left) -> tuple[tf.Tensor, tf.Tensor]:
    boxes = tf.stack([top, left, tf.fill([batch], box_hw[0]), tf.fill([batch], box_hw[1])], axis=1)
    return masks, boxes


def center_masks(seed: _SeedLike | None, batch: int | tf.Tensor, img_hw: Sequence[int],
                 box_hw: Sequence[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """``"center"``: the whole ``box_hw`` box at the image centre (reference test.py).

    ``seed`` is ignored (the hole is fixed); it is accepted so all mask
    functions are called alike. Returns ``(masks, boxes)`` as :func:`make_masks`.
    """
    del seed
    img_hw, box_hw = _pair(img_hw, "img_hw"), _pair(box_hw, "box_hw")
    top, left = _centred_corner(batch, img_hw, box_hw)
    masks = _rect_masks(img_hw, top, left, tf.fill([batch], box_hw[0]), tf.fill([batch], box_hw[1]))
    return _with_boxes(masks, batch, box_hw, top, left)


def box_masks(seed: _SeedLike, batch: int | tf.Tensor, img_hw: Sequence[int],
              box_hw: Sequence[int], max_delta_hw: Sequence[int] = (8, 8)
              ) -> tuple[tf.Tensor, tf.Tensor]:
    """``"box"``: the centred box, each side shrunk by a random ``0..max_delta//2``."""
    img_hw, box_hw, delta_hw = (_pair(v, n) for v, n in ((img_hw, "img_hw"), (box_hw, "box_hw"),
                                                          (max_delta_hw, "max_delta_hw")))
    _, seed_hole = tf.unstack(tf.random.split(_seed_tensor(seed), 2))
    top, left = _centred_corner(batch, img_hw, box_hw)
    masks = _jittered_holes(seed_hole, batch, img_hw, box_hw, delta_hw, top, left)
    return _with_boxes(masks, batch, box_hw, top, left)


def random_box_masks(seed: _SeedLike, batch: int | tf.Tensor, img_hw: Sequence[int],
                     box_hw: Sequence[int], max_delta_hw: Sequence[int] = (8, 8),
                     margins_hw: Sequence[int] = (0, 0)) -> tuple[tf.Tensor, tf.Tensor]:
    """``"random_box"``: the jittered hole of :func:`box_masks` in a randomly placed box."""
    img_hw, box_hw, delta_hw, margins_hw = (
        _pair(v, n) for v, n in ((img_hw, "img_hw"), (box_hw, "box_hw"),
                                 (max_delta_hw, "max_delta_hw"), (margins_hw, "margins_hw")))
    seed_box, seed_hole = tf.unstack(tf.random.split(_seed_tensor(seed), 2))
    top, left = _random_corner(seed_box, batch, img_hw, box_hw, margins_hw)
    masks = _jittered_holes(seed_hole, batch, img_hw, box_hw, delta_hw, top, left)
    return _with_boxes(masks, batch, box_hw, top, left)


def free_form_masks(seed: _SeedLike, batch: int | tf.Tensor, img_hw: Sequence[int],
                    box_hw: Sequence[int], margins_hw: Sequence[int] = (0, 0)
                    ) -> tuple[tf.Tensor, tf.Tensor]:
    """``"free_form"``: brush strokes (at least FREE_FORM_MIN_COVERAGE of the box)
    inside a randomly placed box."""
    img_hw, box_hw, margins_hw = (_pair(v, n) for v, n in (
        (img_hw, "img_hw"), (box_hw, "box_hw"), (margins_hw, "margins_hw")))
    seed_box, seed_hole = tf.unstack(tf.random.split(_seed_tensor(seed), 2))
    top, left = _random_corner(seed_box, batch, img_hw, box_hw, margins_hw)
    strokes = _ensure_coverage(_free_form_strokes(seed_hole, batch, box_hw), box_hw)
    masks = _paste_into_image(strokes, img_hw, box_hw, top, left)
    return _with_boxes(masks, batch, box_hw, top, left)


def make_masks(
    seed: _SeedLike,
    batch: int | tf.Tensor,
    img_hw: Sequence[int],
    box_hw: Sequence[int],
    max_delta_hw: Sequence[int] = (8, 8),
    margins_hw: Sequence[int] = (0, 0),
    mask_type: str = "box",
) -> tuple[tf.Tensor, tf.Tensor]:
    """Draws ``batch`` independent masks (one per sample) of type ``mask_type``.

    Args:
        seed: int32/int64 ``[2]`` stateless seed; equal seeds give equal masks.
        batch: Number of masks.
        img_hw: ``(H, W)`` image size.
        box_hw: ``(h, w)`` size of the local patch box (reference HEIGHT, WIDTH).
        max_delta_hw: Reference MAX_DELTA_HEIGHT/WIDTH: each box side shrinks by
            a random ``0..max_delta//2`` pixels (inclusive) to make the hole.
            Used by ``"box"`` and ``"random_box"`` only.
        margins_hw: Reference VERTICAL/HORIZONTAL_MARGIN for random box placement.
        mask_type: One of :data:`MASK_TYPES`.

    Returns:
        ``(masks, boxes)``: float32 ``[B, H, W, 1]`` in ``{0, 1}`` (1 = hole) and
        int32 ``[B, 4]`` ``(top, left, h, w)`` of the box containing each hole.

    Raises:
        ValueError: For an unknown ``mask_type`` or sizes that do not fit.
    """
    img_hw, box_hw, delta_hw, margins_hw = validate_mask_args(
        img_hw, box_hw, max_delta_hw, margins_hw, mask_type
    )
    if mask_type == "center":
        return center_masks(seed, batch, img_hw, box_hw)
    if mask_type == "box":
        return box_masks(seed, batch, img_hw, box_hw, delta_hw)
    if mask_type == "random_box":
        return random_box_masks(seed, batch, img_hw, box_hw, delta_hw, margins_hw)
    return free_form_masks(seed, batch, img_hw, box_hw, margins_hw)


def make_mask(
    seed: _SeedLike,
    img_hw: Sequence[int],
    box_hw: Sequence[int],
    max_delta_hw: Sequence[int] = (8, 8),
    margins_hw: Sequence[int] = (0, 0),
    mask_type: str = "box",
) -> tuple[tf.Tensor, tf.Tensor]:
    """Draws one mask; see :func:`make_masks` for the arguments.

    Returns:
        ``(mask, box)``: float32 ``[H, W, 1]`` (1 = hole) and int32 ``[4]``
        ``(top, left, h, w)``.
    """
    masks, boxes = make_masks(seed, 1, img_hw, box_hw, max_delta_hw, margins_hw, mask_type)
    return masks[0], boxes[0]


def image_mask(mask_type: str, seed: _SeedLike, img_hw: Sequence[int], box_hw: Sequence[int],
               max_delta_hw: Sequence[int] = (8, 8)) -> np.ndarray:
    """One hole for a user's image of any size, as test.py, evaluate.py and the demo draw it.

    The box is clipped to the image, and the jitter to the box, so any image
    size works; random boxes are placed without margins.

    Args:
        mask_type: One of :data:`MASK_TYPES`.
        seed: ``[2]`` stateless seed (ignored by ``"center"``).
        img_hw: ``(H, W)`` of the image.
        box_hw: ``(h, w)`` of the hole box (a model's HEIGHT, WIDTH).
        max_delta_hw: The jitter of ``"box"`` and ``"random_box"``.

    Returns:
        uint8 ``[H, W, 1]`` numpy array, 255 = hole.
    """
    h, w = _pair(img_hw, "img_hw")
    bh, bw = (min(int(b), s) for b, s in zip(_pair(box_hw, "box_hw"), (h, w)))
    dh, dw = (max(0, min(int(d), b - 1)) for d, b in zip(_pair(max_delta_hw, "max_delta_hw"),
                                                          (bh, bw)))
    mask, _ = make_mask(seed, (h, w), (bh, bw), (dh, dw), (0, 0), mask_type)
    return (mask.numpy() > 0.5).astype(np.uint8) * 255


def center_box_mask(image_hw: Sequence[int], box_hw: Sequence[int]) -> np.ndarray:
    """The reference test.py's mask (``"center"``), box clipped to the image: uint8
    ``[H, W, 1]``, 255 = hole."""
    return image_mask("center", [0, 0], image_hw, box_hw)


def load_mask_file(path: str | os.PathLike, hw: Sequence[int] | None) -> np.ndarray:
    """Reads a mask image (255 / white = hole) for inference or evaluation.

    Any size and channel layout is accepted: colour masks use the brightest
    colour channel (alpha is ignored), 16-bit masks are scaled to 8 bits. The
    mask is resized with nearest-neighbour to ``hw`` and thresholded at > 127.

    Args:
        path: PNG/JPEG/BMP/... mask file.
        hw: Target ``(H, W)``, or None to keep the file's size.

    Returns:
        float32 ``[H, W, 1]`` numpy array in ``{0, 1}``, 1 = hole.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file cannot be decoded as an image.
    """
    import cv2  # local: keeps this module importable where only TF is needed

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mask file not found: {path}")
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError(f"cannot read mask image {path!r} (not a supported image file)")
    if mask.dtype == np.uint16:
        mask = (mask >> 8).astype(np.uint8)
    elif mask.dtype != np.uint8:
        # float or other depths: treat as [0, 1] intensities
        mask = np.clip(mask.astype(np.float32) * 255.0, 0, 255).astype(np.uint8)
    if mask.ndim == 3:
        channels = mask.shape[2]
        mask = mask[:, :, : min(channels, 3)].max(axis=2) if channels != 2 else mask[:, :, 0]
    if hw is not None:
        height, width = _pair(hw, "hw")
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return (mask > 127).astype(np.float32)[:, :, np.newaxis]
