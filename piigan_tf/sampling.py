"""Sampling requests from image files to PNG files: the library behind ``test.py``.

A request is a list of named images with one mask each, a number of samples
and a seed. This module reads the images and draws the masks, splits the
work into ``Inpainter.sample`` calls that stay under its ``max_pixels``,
and writes the grid (one row per image: original | masked, hole white |
samples), the samples one file each, and optionally the attention offsets
of each image's first sample. Python use::

    from piigan_tf import sampling
    from piigan_tf.inference import Inpainter

    inpainter = Inpainter.from_checkpoint()
    images = sampling.load_images("photos/", config=inpainter.config)
    masks = sampling.make_masks(images, inpainter.config, seed=3, mask_type="free_form")
    sampling.write_samples(inpainter, images, masks, num_samples=10, seed=3,
                           grid_path="outputs/photos.png")

Images are uint8 RGB ``[H, W, 3]`` of any size, masks uint8 ``[H, W, 1]``
with 255 = hole. Errors are :class:`RequestError` with messages that name
``test.py``'s options, the way to fix them there.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

log = logging.getLogger("piigan_tf")

#: A grid PNG larger than this is refused (it is built in memory, and no
#: viewer opens it): write the samples one file each instead.
MAX_GRID_BYTES = 2 * 1024**3

#: A named image: ``(name, uint8 RGB [H, W, 3])``.
Named = tuple[str, np.ndarray]


class RequestError(ValueError):
    """A request that cannot run as given; the message says how to fix it."""


# ------------------------------------------------------------------ inputs
def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header, without decoding it
    (PNG and JPEG read here, other formats through PIL's lazy open; None where
    the header cannot be read: the decoder then says why)."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return height, width
    if head[:2] == b"\xff\xd8":  # JPEG: walk the markers to the frame header (SOFn)
        i = 2
        while i + 9 <= len(head) and head[i] == 0xFF:
            marker, length = head[i + 1], struct.unpack(">H", head[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", head[i + 5:i + 9])
                return height, width
            i += 2 + length
        return None
    try:
        from PIL import Image

        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the header only
        try:
            with Image.open(path) as im:
                return im.size[1], im.size[0]
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    except Exception:  # noqa: BLE001 - any unreadable header: let the decoder say why
        return None


def check_decodable(path: str | os.PathLike, max_bytes: float | None,
                    num_samples: int = 1) -> None:
    """Refuses an image whose pixels and samples would not fit in ``max_bytes``.

    Decoding holds the file's pixels twice (OpenCV's BGR and the RGB copy),
    and a request over it what :func:`piigan_tf.windows.request_bytes` counts
    less the generator's pass. Checked from the header, before anything is
    decoded.

    Raises:
        RequestError: naming the size and what to do.
    """
    size = image_size(path) if max_bytes is not None else None
    if size is None:
        return
    from piigan_tf.windows import BASE_BYTES, IMAGE_BYTES, SAMPLE_BYTES

    needed = BASE_BYTES + size[0] * size[1] * (6 + IMAGE_BYTES + SAMPLE_BYTES * num_samples)
    if needed > max_bytes:
        raise RequestError(
            f"{path} is {size[0]}x{size[1]} pixels: decoding it and its {num_samples} sample(s) "
            f"alone need {needed / 1e9:.1f} GB but {max_bytes / 1e9:.1f} GB is available; crop "
            "or scale it down before sampling, or ask for fewer --num_samples (or raise "
            "--max_memory if the machine has the memory)")


def load_images(image: str | os.PathLike | None = None, num_images: int = 4,
                config=None, max_bytes: float | None = None,
                num_samples: int = 1) -> list[Named]:
    """``(name, uint8 RGB)`` pairs from an image file or a folder of images.

    Args:
        image: A file or a folder (its unreadable files are skipped with a
            warning); None: the model's examples
            (:func:`piigan_tf.inference.example_images`).
        num_images: How many examples when ``image`` is None.
        config: The model's training config (picks the examples).
        max_bytes, num_samples: Memory a request may take, and its samples
            per image: a file too large to decode and sample within it is
            refused from its header (:func:`check_decodable`).

    Raises:
        RequestError: no such file or folder, nothing readable in it, or an
            image too large to decode.
    """
    from piigan_tf.data import list_images, load_image_file
    from piigan_tf.inference import example_images

    if image is None:
        return example_images(config, num_images)
    path = Path(image)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise RequestError(f"no image files (png, jpg, bmp, ...) in folder {path}")
    elif path.is_file():
        files = [str(path)]
    else:
        raise RequestError(f"--image {path}: no such file or folder")
    images = []
    for f in files:
        check_decodable(f, max_bytes, num_samples)
        try:
            loaded = load_image_file(f)
        except (ValueError, OSError) as e:
            if len(files) == 1:
                raise RequestError(f"{f} is not a readable image: {e}") from None
            log.warning("skipping %s: %s", f, e)
            continue
        images.append((Path(f).stem, np.asarray(loaded)))
    if not images:
        raise RequestError(f"none of the {len(files)} files in {path} could be read as an image")
    return images


def resize_images(images: Sequence[Named], hw: Sequence[int]) -> list[Named]:
    """Every image resized whole to ``hw = (H, W)``, as training resizes (bilinear)."""
    from piigan_tf.data.preprocess import bring_to_size

    h, w = (int(v) for v in hw)
    if h < 1 or w < 1:
        raise RequestError(f"--size must be positive, got {h} {w}")
    return [(n, bring_to_size(im, (h, w), "resize")) for n, im in images]


def scale_notes(images: Sequence[Named], config, factor: float = 2.0) -> list[str]:
    """Notes for images far larger than what a model saw in training.

    A model trained on whole images resized to ``IMG_SHAPES`` (``RANDOM_CROP``
    off, e.g. the shipped 64x64 face model) learned faces at that scale: in a
    much larger image its hole covers a small part of the face and the fill
    is noise. Returns one line per such image, naming ``--size``.
    """
    if config is None or config.RANDOM_CROP:
        return []
    th, tw = config.img_hw
    return [f"note: {name} is {im.shape[0]}x{im.shape[1]}, but this model was trained on whole "
            f"images resized to {th}x{tw}; at this scale its fills are noise: pass --size "
            f"{th} {tw} (or crop the image around the region first)"
            for name, im in images if im.shape[0] > factor * th or im.shape[1] > factor * tw]


def make_masks(images: Sequence[Named], config, seed: int, mask: str | os.PathLike | None = None,
               mask_type: str = "center") -> list[np.ndarray]:
    """One uint8 ``[H, W, 1]`` mask (255 = hole) per image.

    Args:
        images: The request's images.
        config: The model's config (hole box and jitter; None: 64 x 64, 8).
        seed: Image ``i`` gets ``image_mask(mask_type, [seed, i], ...)``.
        mask: A mask image (white, > 127, = hole) used for every image,
            resized to each with nearest-neighbour; replaces ``mask_type``.
        mask_type: One of :data:`piigan_tf.data.MASK_TYPES`.

    Raises:
        RequestError: the mask file cannot be read.
    """
    from piigan_tf.data import image_mask, load_mask_file

    box_hw = config.box_hw if config else (64, 64)
    delta = (config.MAX_DELTA_HEIGHT, config.MAX_DELTA_WIDTH) if config else (8, 8)
    masks = []
    for i, (_, image) in enumerate(images):
        hw = image.shape[:2]
        if mask:
            try:
                loaded = load_mask_file(mask, hw)
            except (ValueError, OSError) as e:
                raise RequestError(f"--mask {mask}: {e}") from None
            masks.append((loaded > 0.5).astype(np.uint8) * 255)
        else:
            masks.append(image_mask(mask_type, [seed, i], hw, box_hw, delta))
    return masks


def masked_image(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with its hole painted white, as the grids show the input."""
    return np.where(mask > 0, np.uint8(255), image)


# -------------------------------------------------------------- planning
def batches(images: Sequence[Named], batch_size: int) -> list[tuple[int, int]]:
    """Runs of consecutive equal-sized images, at most batch_size long: [(start, stop)]."""
    out, start = [], 0
    for i in range(1, len(images) + 1):
        if i == len(images) or i - start == batch_size or \
                images[i][1].shape != images[start][1].shape:
            out.append((start, i))
            start = i
    return out


def plan_calls(images: Sequence[Named], batch_size: int, num_samples: int,
               max_pixels: int, pass_pixels: Sequence[int] | None = None
               ) -> list[tuple[int, int, int, int]]:
    """Splits the work into ``Inpainter.sample`` calls under its ``max_pixels``.

    ``pass_pixels[i]``: the pixels one sample of image ``i`` puts through the
    generator in its largest pass (its window's, :meth:`Inpainter.pass_size`;
    default: the whole image's).

    Returns ``[(start, stop, first, count)]``: images ``start:stop`` (equal
    sizes, at most ``batch_size``), samples ``first .. first + count - 1`` of
    each. Normally one call per run of images with all samples; a request
    too large for one call is split by images, then by samples, so any
    ``num_samples`` runs in bounded memory.

    Raises:
        RequestError: one completion of an image is over the limit.
    """
    calls = []
    for start, stop in batches(images, batch_size):
        h, w = images[start][1].shape[:2]
        pixels = max(pass_pixels[start:stop]) if pass_pixels else h * w
        per_call = max_pixels // pixels  # samples of this size one call may hold
        if per_call < 1:
            raise RequestError(
                f"{images[start][0]} is {h}x{w}: one completion of it puts {pixels:,} pixels "
                f"through the generator, over the {max_pixels:,}-pixel limit of a call; "
                "use a smaller --window, or resize it with --size H W")
        if num_samples <= per_call:
            step = max(1, min(stop - start, per_call // num_samples))
            calls += [(i, min(i + step, stop), 0, num_samples) for i in range(start, stop, step)]
        else:
            calls += [(i, i + 1, first, min(per_call, num_samples - first))
                      for i in range(start, stop) for first in range(0, num_samples, per_call)]
    return calls


def check_grid_size(images: Sequence[Named], num_samples: int, zoom: int = 1) -> None:
    """Raises :class:`RequestError` if the grid would be over :data:`MAX_GRID_BYTES`."""
    grid_bytes = sum((2 + num_samples) * im.size for _, im in images) * zoom**2
    if grid_bytes > MAX_GRID_BYTES:
        raise RequestError(
            f"the grid of {len(images)} image(s) x {num_samples:,} samples would take "
            f"{grid_bytes / 1e9:.1f} GB; write the samples as separate files instead: "
            "--output '' --output_dir DIR (or ask for fewer --num_samples)")


# -------------------------------------------------------------- sampling
def iter_samples(inpainter, images: Sequence[Named], masks: Sequence[np.ndarray],
                 calls: Sequence[tuple[int, int, int, int]], seed: int
                 ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Runs the planned calls: yields ``(image index, first sample index, samples)``.

    ``samples`` is uint8 ``[count, H, W, 3]``, samples ``first ..`` of that
    image. Each call's noise offsets make its samples its part of the whole
    request's: the same for any batch size or split.

    Raises:
        RequestError: the API refused a call, or memory ran out.
    """
    import tensorflow as tf

    for start, stop, first, count in calls:
        batch = np.stack([im for _, im in images[start:stop]])
        try:
            samples = inpainter.sample(batch, np.stack(masks[start:stop]), count, seed=seed,
                                       first_image=start, first_sample=first)
        except (ValueError, tf.errors.InvalidArgumentError) as e:
            raise RequestError(getattr(e, "message", str(e))) from None
        except tf.errors.ResourceExhaustedError:
            raise RequestError("out of memory: use smaller images (--size H W), fewer "
                               "--num_samples or a smaller --batch_size") from None
        for i in range(stop - start):
            yield start + i, first, samples[i]


def zoom_cells(rows: list[list[np.ndarray]], zoom: int) -> list[list[np.ndarray]]:
    """Enlarges every cell ``zoom`` times (nearest neighbour)."""
    if zoom == 1:
        return rows
    return [[np.repeat(np.repeat(c, zoom, 0), zoom, 1) for c in row] for row in rows]


def write_samples(inpainter, images: Sequence[Named], masks: Sequence[np.ndarray],
                  num_samples: int, seed: int, *, batch_size: int = 4,
                  grid_path: str | os.PathLike | None = None,
                  output_dir: str | os.PathLike | None = None, zoom: int = 1,
                  progress: bool = True) -> Path | None:
    """Samples every image ``num_samples`` times and writes the PNGs.

    Args:
        inpainter: An :class:`~piigan_tf.inference.Inpainter`.
        images, masks: The request (see :func:`load_images`, :func:`make_masks`).
        num_samples: Completions per image.
        seed: Noise seed: sample ``j`` of image ``i`` depends only on
            ``(seed, i, j)``.
        batch_size: Images of equal size per call (each brings num_samples rows).
        grid_path: Where the grid goes (original | masked | samples, one row
            per image), or None.
        output_dir: Where ``{name}_masked.png`` and ``{name}_sample{j:02d}.png``
            go, or None. They are written as the calls finish, so only the
            grid is held in memory.
        zoom: Enlarges the grid's cells (the sample files keep their size).
        progress: Show a progress bar when there are several calls.

    Returns:
        The grid's path (None without ``grid_path``).

    Raises:
        RequestError: the request cannot run (see :func:`plan_calls`,
            :func:`check_grid_size`, :func:`iter_samples`).
        OSError: a PNG cannot be written (the message names it).
    """
    from tqdm.auto import tqdm

    from piigan_tf.utils import grid, write_png

    pass_pixels = [int(np.prod(inpainter.pass_size(mask[None], 1)[1:])) for mask in masks] \
        if hasattr(inpainter, "pass_size") else None
    calls = plan_calls(images, batch_size, num_samples, inpainter.max_pixels, pass_pixels)
    if grid_path:
        check_grid_size(images, num_samples, zoom)
    rows = [[] for _ in images]
    out = Path(output_dir) if output_dir else None
    bar = tqdm(total=len(images) * num_samples, unit="sample", desc="sampling",
               disable=not progress or len(calls) < 2)
    try:
        for i, first, samples in iter_samples(inpainter, images, masks, calls, seed):
            name, image = images[i]
            if first == 0:  # the image's first call: its original and masked cells
                masked = masked_image(image, masks[i])
                if grid_path:
                    rows[i] += [image, masked]
                if out:
                    write_png(out / f"{name}_masked.png", masked)
            if grid_path:
                rows[i] += list(samples)
            if out:
                for j, sample in enumerate(samples, start=first):
                    write_png(out / f"{name}_sample{j:02d}.png", sample)
            bar.update(len(samples))
    finally:
        bar.close()
    return write_png(grid_path, grid(zoom_cells(rows, zoom))) if grid_path else None


# ------------------------------------------------------------ attention
def has_generator(inpainter) -> bool:
    """Whether the attention offsets can be shown: the generator itself is
    loaded (a checkpoint), not only an exported SavedModel's signatures."""
    return getattr(inpainter.module, "generator", None) is not None


def attention_flow(inpainter, images: Sequence[Named], masks: Sequence[np.ndarray], seed: int,
                   batch_size: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each image's first sample and its contextual-attention offsets, coloured.

    Returns:
        One ``(sample, flow)`` pair per image, both uint8 ``[H, W, 3]``:
        sample 0 of the request and the offsets of
        :meth:`~piigan_tf.inference.Inpainter.attention_offsets` coloured with
        :func:`piigan_tf.utils.flow_to_image` (hue = direction, brightness =
        distance, black = copied from where it is), each offset cell
        enlarged to the 8 x 8 pixels it stands for.

    Raises:
        RequestError: the Inpainter has no generator (see
            :func:`has_generator`), or a call was refused.
    """
    from piigan_tf.utils import flow_to_image

    out = []
    for start, stop, _, _ in plan_calls(images, batch_size, 1, inpainter.max_pixels):
        batch = np.stack([im for _, im in images[start:stop]])
        try:
            samples, offsets = inpainter.attention_offsets(
                batch, np.stack(masks[start:stop]), seed, first_image=start)
        except ValueError as e:
            raise RequestError(str(e)) from None
        h, w = batch.shape[1:3]
        cell = (h + 7) // 8 * 8 // offsets.shape[1]  # pixels per offset cell (of the padded image)
        flows = np.repeat(np.repeat(flow_to_image(offsets), cell, 1), cell, 2)[:, :h, :w]
        out += list(zip(samples, flows))
    return out


def write_flow(inpainter, images: Sequence[Named], masks: Sequence[np.ndarray], seed: int, *,
               batch_size: int = 4, grid_path: str | os.PathLike | None = None,
               output_dir: str | os.PathLike | None = None, zoom: int = 1) -> Path | None:
    """Writes :func:`attention_flow`'s pictures.

    The grid (one row per image: first sample | its offsets) goes to
    ``grid_path`` with ``_flow`` added to its name (``samples.png`` ->
    ``samples_flow.png``); ``{name}_flow.png`` (the coloured offsets) to
    ``output_dir``.

    Returns:
        The flow grid's path (None without ``grid_path``).
    """
    from piigan_tf.utils import grid, write_png

    pairs = attention_flow(inpainter, images, masks, seed, batch_size)
    if output_dir:
        for (name, _), (_, flow) in zip(images, pairs):
            write_png(Path(output_dir) / f"{name}_flow.png", flow)
    if not grid_path:
        return None
    grid_path = Path(grid_path)
    flow_path = grid_path.with_name(f"{grid_path.stem}_flow{grid_path.suffix}")
    return write_png(flow_path, grid(zoom_cells([list(pair) for pair in pairs], zoom)))
