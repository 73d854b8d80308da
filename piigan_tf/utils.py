"""Image helpers for grids and flow visualisation (outside any exported graph)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def image_grid(columns) -> tf.Tensor:
    """Joins same-shaped image batches side by side.

    Args:
        columns: list of [B, H, W, 3] tensors in [-1, 1].

    Returns:
        [B, H, W * len(columns), 3] float32 in [0, 1] (for ``tf.summary.image``).
    """
    row = tf.concat([tf.cast(c, tf.float32) for c in columns], axis=2)
    return tf.clip_by_value((row + 1.0) / 2.0, 0.0, 1.0)


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats -> uint8 (rounded, saturated)."""
    x = (np.asarray(images, np.float32) + 1.0) * 127.5
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def flow_to_image(offsets) -> np.ndarray:
    """Colours attention offsets [B, h, w, 2] (dy, dx) as RGB uint8 (hue = direction).

    Replaces the reference's py_func colour wheel; runs in NumPy, outside the
    graph, so exported models stay free of Python ops.
    """
    import cv2

    off = np.asarray(offsets, np.float32)
    dy, dx = off[..., 0], off[..., 1]
    mag = np.sqrt(dx ** 2 + dy ** 2)
    ang = (np.arctan2(-dy, -dx) + np.pi) / (2 * np.pi)  # [0, 1]
    out = []
    for a, m in zip(ang, mag):
        hsv = np.stack([a * 179, np.full_like(a, 255), 255 * m / max(m.max(), 1e-6)], -1)
        out.append(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB))
    return np.stack(out)
