"""Image helpers outside any exported graph: grids, PNG files, flow colours.

:func:`grid` is the one grid layout (``test.py``'s sample grids, the
evaluation report's grid, the training summaries through :func:`image_grid`)
and :func:`write_png` the one PNG writer (``test.py``, the evaluation report,
the demo).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

#: Height of the title strip :func:`grid` adds above the cells when given titles.
TITLE_HEIGHT = 14


def grid(rows: Sequence[Sequence[np.ndarray]], pad: int = 2, fill=255,
         titles: Sequence[str] | None = None) -> np.ndarray:
    """Lays images out in rows of cells, ``pad`` pixels of ``fill`` between them.

    Args:
        rows: Rows of ``[h, w, C]`` cells, all of one dtype and channel count.
            The cells of a row share a height; rows may differ in height,
            cell count and width (shorter rows are filled out on the right).
        pad: Gap between cells and between rows (no outer border).
        fill: Value of the gaps and fill: 255 (white) for uint8, 1.0 for
            floats in [0, 1].
        titles: Optional column titles, written in black in a
            :data:`TITLE_HEIGHT`-pixel strip above the cells, each at the
            left edge of the first row's cell (uint8 cells only).

    Returns:
        ``[H, W, C]`` of the cells' dtype: ``H`` = sum of row heights +
        ``pad`` per gap (+ the title strip), ``W`` = the widest row.
    """
    if not rows or not all(len(cells) for cells in rows):
        raise ValueError("grid needs at least one row, and at least one cell in every row")
    dtype, channels = rows[0][0].dtype, rows[0][0].shape[-1]
    lines = []
    for cells in rows:
        h = cells[0].shape[0]
        if any(c.shape[0] != h for c in cells):
            raise ValueError(f"the cells of a row must share a height; got "
                             f"{[c.shape[0] for c in cells]}")
        gap = np.full([h, pad, channels], fill, dtype)
        lines.append(np.concatenate([p for c in cells for p in (c, gap)][:-1], axis=1))
    width = max(line.shape[1] for line in lines)
    out = np.full([sum(line.shape[0] for line in lines) + pad * (len(lines) - 1), width, channels],
                  fill, dtype)
    y = 0
    for line in lines:
        out[y:y + line.shape[0], :line.shape[1]] = line
        y += line.shape[0] + pad
    if titles:
        out = np.concatenate([_title_strip(titles, rows[0], pad, width, channels, fill, dtype),
                              out], axis=0)
    return out


def _title_strip(titles, first_row, pad, width, channels, fill, dtype) -> np.ndarray:
    import cv2

    if dtype != np.uint8:
        raise ValueError(f"grid titles need uint8 cells, got {dtype}")
    strip = np.full([TITLE_HEIGHT, width, channels], fill, dtype)
    x = 0
    for title, cell in zip(titles, first_row):
        cv2.putText(strip, title, (x + 2, TITLE_HEIGHT - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (0, 0, 0), 1, cv2.LINE_AA)
        x += cell.shape[1] + pad
    return strip


def image_grid(columns) -> tf.Tensor:
    """Joins same-shaped image batches side by side, for ``tf.summary.image``.

    :func:`grid` without gaps, one row per batch element (eager tensors).

    Args:
        columns: list of [B, H, W, 3] tensors in [-1, 1].

    Returns:
        [B, H, W * len(columns), 3] float32 in [0, 1].
    """
    cells = [np.clip((np.asarray(c, np.float32) + 1.0) / 2.0, 0.0, 1.0) for c in columns]
    rows = [grid([[c[b] for c in cells]], pad=0, fill=1.0) for b in range(len(cells[0]))]
    return tf.constant(np.stack(rows) if rows else np.zeros([0, *cells[0].shape[1:3], 3],
                                                            np.float32))


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Writes a uint8 RGB ``[H, W, 3]`` image as PNG, making its folder if needed.

    (The file's extension picks the format, so ``.jpg`` works too.)

    Returns:
        ``path`` as a Path.

    Raises:
        OSError: naming the path, when the folder cannot be made or the
            file cannot be written.
    """
    import cv2

    path = Path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"write_png takes uint8 RGB [H, W, 3]; got {image.dtype} {image.shape}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]))
    except (OSError, cv2.error) as e:  # a file in the way of the folder; no writer for the suffix
        reason = e.strerror if isinstance(e, OSError) else getattr(e, "err", None) or str(e)
        raise OSError(f"cannot write {path}: {reason}") from None
    if not written:
        raise OSError(f"cannot write {path}")
    return path


def flow_to_image(offsets) -> np.ndarray:
    """Colours attention offsets [B, h, w, 2] (dy, dx) as RGB uint8.

    Hue = direction, brightness = length (relative to the longest of the
    image); zero offsets are black. Replaces the reference's py_func colour
    wheel; runs in NumPy, outside the graph, so exported models stay free of
    Python ops.
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
