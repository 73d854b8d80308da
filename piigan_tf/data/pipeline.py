"""The training input pipeline: file list → decoded, cropped images → batches with masks.

Each element of :func:`build_dataset` is a dict::

    {"images": float32 [B, H, W, 3] in [-1, 1] (RGB),
     "masks":  float32 [B, H, W, 1] in {0, 1}, 1 = hole,
     "boxes":  int32   [B, 4] (top, left, h, w) of the local patch box}

with an extra leading ``K`` dimension when ``group=K``.

Cropping follows the reference (neuralgym ``np_random_crop`` with
``align=False``): an image smaller than the target on either side is first
scaled up (bilinear) by ``s = max(th/h, tw/w)`` to ``(ceil(h·s), ceil(w·s))``;
then a random ``th × tw`` window is taken at native scale. Without random
cropping the image is resized to ``th × tw``.

Differences from the reference, all deliberate:

* RGB throughout (the reference used OpenCV's BGR).
* JPEGs are decoded with the accurate integer IDCT (``INTEGER_ACCURATE``), the
  one OpenCV and PIL use, so pixels match ``cv2.imread`` exactly; TF's default
  (``INTEGER_FAST``) differs by up to ~10 levels.
* EXIF orientation is ignored (the reference's ``cv2.imread`` applied it);
  :func:`load_image_file` ignores it too, so training and inference agree.
* Large JPEGs are not decoded whole when randomly cropped: only the crop
  window plus a 32-pixel margin is decoded (``decode_and_crop_jpeg``), which
  gives bit-identical pixels with memory proportional to the window. Other
  formats are decoded whole (a 10,000² PNG takes ~300 MB per element in
  flight). Images are never downscaled before cropping, so crops stay at
  native scale as in the reference.
* Files that cannot be used are skipped instead of stopping training: a cheap
  pre-scan drops missing, empty and non-image files (:func:`scan_files`), and
  files that still fail to decode are dropped by ``ignore_errors`` and
  counted: a warning per epoch gives how many. An endlessly repeated stream
  in which a whole epoch fails to decode (every file corrupt, or the disk
  gone) stops with an error instead of looping forever.
* Masks are per sample (the reference shared one mask across the batch).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
from typing import Sequence

import numpy as np
import tensorflow as tf

from piigan_tf.data.flist import read_flist
from piigan_tf.data.masks import make_mask, validate_mask_args
from piigan_tf.data.preprocess import (center_crop_image, crop_window, random_crop_image,
                                       resize_image)

logger = logging.getLogger("piigan_tf")

__all__ = [
    "read_flist",
    "scan_files",
    "decode_image",
    "random_crop_image",
    "center_crop_image",
    "resize_image",
    "decode_and_crop",
    "build_dataset",
    "load_image_file",
]

# Leading bytes of the formats tf.io.decode_image reads.
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
_JPEG_MAGIC = b"\xff\xd8\xff"
# Crop windows are widened to this alignment and margin before partial JPEG
# decoding: chroma upsampling near a window edge reads neighbouring MCUs (up
# to 32 px wide), so a tight window would differ from a full decode.
_JPEG_MCU = 32


def _file_problem(path: str) -> str | None:
    """Why a file is unusable (cheap checks only), or None if it looks fine."""
    try:
        if not os.path.isfile(path):
            return "missing"
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return "unreadable"
    if not head:
        return "empty"
    if not any(head.startswith(magic) for magic, _ in _MAGIC):
        return "not JPEG/PNG/BMP/GIF"
    return None


def scan_files(paths: Sequence[str], max_examples: int = 3) -> tuple[list[str], int]:
    """Drops missing, empty and non-image files by looking at their first bytes.

    Truncated or otherwise corrupt images with a valid header pass this scan;
    the dataset skips them when they fail to decode.

    Args:
        paths: Image paths.
        max_examples: How many skipped names to show in the log message.

    Returns:
        ``(good, bad_count)``: the usable paths in input order and how many
        were dropped (logged as a warning on the ``piigan_tf`` logger).

    Raises:
        ValueError: If no usable file remains.
    """
    paths = [os.fspath(p) for p in paths]
    # Threads help on network filesystems with large lists; open() releases the GIL.
    if len(paths) > 256:
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            problems = list(pool.map(_file_problem, paths, chunksize=64))
    else:
        problems = [_file_problem(p) for p in paths]
    good = [p for p, problem in zip(paths, problems) if problem is None]
    bad = [(p, problem) for p, problem in zip(paths, problems) if problem is not None]
    if bad:
        examples = ", ".join(f"{p} ({problem})" for p, problem in bad[:max_examples])
        logger.warning(
            "skipping %d of %d image files (missing, empty or not JPEG/PNG/BMP/GIF), e.g. %s",
            len(bad),
            len(paths),
            examples,
        )
    if not good:
        raise ValueError(
            f"no usable image file among the {len(paths)} given "
            "(all missing, empty or not JPEG/PNG/BMP/GIF)"
        )
    return good, len(bad)


def _decode_jpeg(contents: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE")


def _le_uint(data: tf.Tensor, offset: int, size: int) -> tf.Tensor:
    """Little-endian unsigned integer of ``size`` bytes from a uint8 vector."""
    value = tf.constant(0, tf.int64)
    for i in range(size):
        value += tf.cast(data[offset + i], tf.int64) * (256**i)
    return value


def _bmp_palette_to_rgb(contents: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """Applies the colour table of an 8-bit BMP.

    ``tf.io.decode_bmp`` returns the palette *indices* of 8-bit BMPs as grey
    levels, which is right only for grey palettes; look the colours up here.
    """
    header = tf.io.decode_raw(tf.strings.substr(contents, 0, 54), tf.uint8)
    bits = _le_uint(header, 28, 2)

    def lookup():
        palette_at = 14 + _le_uint(header, 14, 4)
        colours = _le_uint(header, 46, 4)
        colours = tf.where(colours == 0, tf.constant(256, tf.int64), colours)
        table = tf.io.decode_raw(tf.strings.substr(contents, palette_at, 4 * colours), tf.uint8)
        table = tf.reshape(table, [-1, 4])[:, 2::-1]  # BGRx -> RGB
        return tf.gather(table, tf.cast(image[:, :, 0], tf.int32))

    return tf.cond(bits == 8, lookup, lambda: image)


def _decode_non_jpeg(contents: tf.Tensor) -> tf.Tensor:
    # uint8 decoding is exact for 16-bit PNGs too (libpng strips the low byte,
    # which equals decoding to uint16 and converting), at half the memory.
    image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    is_bmp = tf.strings.substr(contents, 0, 2) == b"BM"
    return tf.cond(is_bmp, lambda: _bmp_palette_to_rgb(contents, image), lambda: image)


def decode_image(contents: tf.Tensor) -> tf.Tensor:
    """Decodes JPEG/PNG/BMP/GIF bytes to RGB uint8 (pure TF).

    Grey, grey+alpha, RGBA and palette images become RGB (alpha dropped),
    16-bit PNGs keep their high byte, GIFs give their first frame.

    Args:
        contents: Scalar string tensor with the file's bytes.

    Returns:
        uint8 ``[H, W, 3]``.
    """
    is_jpeg = tf.strings.substr(contents, 0, 3) == _JPEG_MAGIC
    image = tf.cond(is_jpeg, lambda: _decode_jpeg(contents), lambda: _decode_non_jpeg(contents))
    image.set_shape([None, None, 3])
    return image


def _jpeg_random_crop(contents: tf.Tensor, target_hw, seed) -> tf.Tensor:
    """:func:`random_crop_image` for JPEG bytes, decoding only around the window."""
    target_h, target_w = target_hw
    shape = tf.io.extract_jpeg_shape(contents, output_type=tf.int32)
    height, width = shape[0], shape[1]
    needs_scaling, _, _, top, left = crop_window(height, width, target_hw, seed)

    def decode_window():
        y0 = tf.maximum(0, (top // _JPEG_MCU - 1) * _JPEG_MCU)
        x0 = tf.maximum(0, (left // _JPEG_MCU - 1) * _JPEG_MCU)
        y1 = tf.minimum(height, (-(-(top + target_h) // _JPEG_MCU) + 1) * _JPEG_MCU)
        x1 = tf.minimum(width, (-(-(left + target_w) // _JPEG_MCU) + 1) * _JPEG_MCU)
        window = tf.io.decode_and_crop_jpeg(
            contents, tf.stack([y0, x0, y1 - y0, x1 - x0]), channels=3, dct_method="INTEGER_ACCURATE"
        )
        return window[top - y0 : top - y0 + target_h, left - x0 : left - x0 + target_w]

    def decode_small():
        return random_crop_image(_decode_jpeg(contents), target_hw, seed)

    return tf.cond(needs_scaling, decode_small, decode_window)


def decode_and_crop(
    contents: tf.Tensor, target_hw: Sequence[int], seed, random_crop: bool | str = True
) -> tf.Tensor:
    """Decodes image bytes and brings them to ``target_hw`` as the reference does.

    Args:
        contents: Scalar string tensor, the file's bytes.
        target_hw: ``(th, tw)``.
        seed: int32/int64 ``[2]`` stateless seed (crop position).
        random_crop: Reference RANDOM_CROP: scale up if needed, then a random
            native-scale window. If False the whole image is resized to
            ``target_hw``; ``"center"``: the centre window, scaled up as the
            random one (the deterministic form of a crop model's input,
            :func:`piigan_tf.data.preprocess.fit_to_model`).

    Returns:
        uint8 ``[th, tw, 3]`` RGB.
    """
    target_hw = tuple(int(v) for v in target_hw)
    if random_crop == "center":
        image = center_crop_image(decode_image(contents), target_hw)
    elif random_crop:
        is_jpeg = tf.strings.substr(contents, 0, 3) == _JPEG_MAGIC
        image = tf.cond(
            is_jpeg,
            lambda: _jpeg_random_crop(contents, target_hw, seed),
            lambda: random_crop_image(_decode_non_jpeg(contents), target_hw, seed),
        )
    else:
        image = resize_image(decode_image(contents), target_hw)
    image.set_shape([*target_hw, 3])
    return image


def _warn_skipped(epoch: tf.Tensor, skipped: tf.Tensor, expected: tf.Tensor) -> tf.Tensor:
    """Prints the count of undecodable files of an epoch (graph op, stderr); returns 0."""
    printed = tf.print("WARNING piigan_tf: skipped", skipped, "of", expected,
                       "image files that failed to decode (corrupt, truncated or unsupported) "
                       "in epoch", epoch, "(printed again only if the count changes)",
                       output_stream=sys.stderr)
    with tf.control_dependencies([printed]):
        return tf.constant(0, tf.int64)


def build_dataset(
    files: Sequence[str] | str | os.PathLike,
    img_shape: Sequence[int] = (128, 128, 3),
    batch_size: int = 13,
    *,
    box_shape: Sequence[int] = (64, 64),
    max_delta: Sequence[int] = (8, 8),
    margins: Sequence[int] = (0, 0),
    mask_type: str = "box",
    random_crop: bool = True,
    group: int | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int = 0,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    drop_remainder: bool = True,
    start_batch: int = 0,
) -> tf.data.Dataset:
    """Builds the training (or validation) ``tf.data`` pipeline.

    The stream is a sequence of epochs; epoch ``e`` visits every file once in
    an order drawn from ``(seed, e)``, and the crop and mask of each visit are
    drawn from ``(seed, e, position in epoch)``. Everything is therefore a pure
    function of ``seed``: two datasets built with the same arguments yield
    identical elements, and resuming is exact and cheap with ``start_batch``
    (files before it are skipped without being read). ``dataset.skip(n)``
    gives the same elements as ``start_batch=n`` but decodes the skipped
    files; the two agree as long as no file fails to decode at run time
    (those are dropped, shifting later batches by one image).

    Args:
        files: Image paths, or the path of a ``.flist``.
        img_shape: ``(H, W, 3)`` of the crops.
        batch_size: Images per batch (reference BATCH_SIZE 13).
        box_shape: ``(h, w)`` local patch box (reference HEIGHT, WIDTH).
        max_delta: Reference MAX_DELTA_HEIGHT/WIDTH (hole jitter).
        margins: Reference VERTICAL/HORIZONTAL_MARGIN (random boxes).
        mask_type: One of ``piigan_tf.data.masks.MASK_TYPES``.
        random_crop: Reference RANDOM_CROP; False resizes whole images;
            ``"center"`` takes the centre window (see :func:`decode_and_crop`).
        group: If set, ``K`` consecutive batches are stacked into one element
            with a leading ``K`` dimension (e.g. 5 critic batches + 1
            generator batch per training step); incomplete groups are dropped.
        shuffle: Shuffle the files each epoch (seeded).
        repeat: Loop over epochs forever; False gives one epoch.
        seed: Seed for file order, crops and masks.
        num_parallel_calls: Parallelism of decoding (output order is fixed).
        drop_remainder: Drop a last incomplete batch (only matters without
            ``repeat``; always done with ``group``).
        start_batch: Number of elements (batches, or groups when ``group`` is
            set) to skip, for resuming training.

    Returns:
        A dataset of dicts ``images`` float32 ``[B, H, W, 3]`` in [-1, 1],
        ``masks`` float32 ``[B, H, W, 1]`` (1 = hole), ``boxes`` int32 ``[B, 4]``;
        with ``group=K`` each has a leading ``K`` dimension.

    Raises:
        FileNotFoundError: If ``files`` is a missing file list.
        ValueError: If no usable file remains or an argument is invalid.
    """
    if isinstance(files, (str, os.PathLike)):
        files = read_flist(files)
    height, width, channels = (int(v) for v in img_shape)
    if channels != 3:
        raise ValueError(f"img_shape must have 3 channels (RGB), got {tuple(img_shape)}")
    if batch_size < 1 or (group is not None and group < 1) or start_batch < 0:
        raise ValueError("batch_size and group must be >= 1 and start_batch >= 0")
    validate_mask_args((height, width), box_shape, max_delta, margins, mask_type)  # fail before tracing
    files, _ = scan_files(files)
    num_files = len(files)
    logger.info("dataset: %d image files, batch %d, seed %d", num_files, batch_size, seed)

    root_key = tf.constant([seed, 0], tf.int64)
    paths = tf.constant(files)
    skip_files = start_batch * batch_size * (group or 1)
    first_epoch, skip_in_epoch = divmod(skip_files, num_files) if repeat else (0, skip_files)

    # The map functions use explicit tf.cond, so AutoGraph has nothing to
    # convert; skipping it roughly halves the time to build the dataset.
    @tf.autograph.experimental.do_not_convert
    def epoch_files(epoch):
        order_key = tf.random.split(tf.random.fold_in(root_key, epoch), 2)[0]
        order = tf.range(num_files, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=order_key)
        positions = tf.range(num_files, dtype=tf.int64)
        epochs = tf.fill([num_files], epoch)
        files = tf.data.Dataset.from_tensor_slices((tf.gather(paths, order), epochs, positions))
        # End-of-epoch marker (position -1): lets check_epoch count the files
        # that decoded, as ignore_errors drops failures without a trace.
        end = tf.data.Dataset.from_tensors((tf.constant(""), epoch, tf.constant(-1, tf.int64)))
        return files.concatenate(end)

    @tf.autograph.experimental.do_not_convert
    def load(path, epoch, position):
        epoch_key = tf.random.split(tf.random.fold_in(root_key, epoch), 2)[1]
        element_key = tf.random.fold_in(epoch_key, position)
        crop_key, mask_key = tf.unstack(tf.random.split(element_key, 2))
        image = tf.cond(
            position >= 0,
            lambda: decode_and_crop(tf.io.read_file(path), (height, width), crop_key, random_crop),
            lambda: tf.zeros([height, width, 3], tf.uint8),
        )
        mask, box = make_mask(mask_key, (height, width), box_shape, max_delta, margins, mask_type)
        element = {"images": tf.cast(image, tf.float32) / 127.5 - 1.0, "masks": mask, "boxes": box}
        return element, epoch, position

    @tf.autograph.experimental.do_not_convert
    def check_epoch(state, item):
        """Counts decoded files; at an end marker reports skips (and stops if all failed).

        The state is (files decoded since the last marker, the previous epoch's
        skip count): a count is printed when it changes, not every epoch.
        """
        decoded, last_skipped = state
        element, epoch, position = item
        is_file = position >= 0

        def end_of_epoch():
            # The first epoch of a resumed stream starts skip_in_epoch files in.
            expected = tf.where(epoch == first_epoch,
                                tf.constant(num_files - skip_in_epoch, tf.int64),
                                tf.constant(num_files, tf.int64))
            skipped = expected - decoded
            checks = []
            if repeat:
                checks.append(tf.debugging.Assert(decoded > 0, [
                    "no image file could be decoded in epoch", epoch, "of the dataset: all",
                    expected, "files read are corrupt, truncated, unreadable or in an "
                    "unsupported format (JPEG/PNG/BMP/GIF are read); check the files, e.g. "
                    "open a few with PIL"]))
            with tf.control_dependencies(checks):
                warned = tf.cond((skipped > 0) & (skipped != last_skipped),
                                 lambda: _warn_skipped(epoch, skipped, expected),
                                 lambda: tf.constant(0, tf.int64))
            with tf.control_dependencies([warned]):
                return tf.identity(skipped)

        skipped = tf.cond(is_file, lambda: last_skipped, end_of_epoch)
        decoded = tf.where(is_file, decoded + 1, tf.constant(0, tf.int64))
        return (decoded, skipped), (element, is_file)

    if repeat:
        epochs = tf.data.Dataset.counter(start=first_epoch, dtype=tf.int64)
    else:
        epochs = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    dataset = epochs.flat_map(epoch_files)
    if skip_in_epoch:
        dataset = dataset.skip(skip_in_epoch)  # skips paths only: nothing is read
    dataset = dataset.map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
    dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), check_epoch)
    dataset = dataset.filter(lambda element, is_file: is_file).map(lambda element, _: element)
    if group is None:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:  # a group stacks equal-sized batches, so partial ones cannot take part
        dataset = dataset.batch(batch_size, drop_remainder=True).batch(group, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def load_image_file(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as RGB uint8 for inference and evaluation code.

    Decodes as the training pipeline does (same JPEG IDCT, alpha dropped,
    16-bit keeps its high byte, EXIF orientation ignored).

    Args:
        path: Image file (anything OpenCV reads; PIL is the fallback, e.g. for GIF).

    Returns:
        uint8 ``[H, W, 3]`` RGB numpy array.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it cannot be decoded; the message names the file.
    """
    import cv2  # local import: the pipeline itself does not need OpenCV

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is not None:
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        elif image.dtype != np.uint8:
            raise ValueError(f"unsupported pixel type {image.dtype} in {path!r}; expected 8- or 16-bit")
        if image.ndim == 2:
            return np.repeat(image[:, :, np.newaxis], 3, axis=2)
        if image.shape[2] in (1, 2):  # grey (+ alpha)
            return np.repeat(image[:, :, :1], 3, axis=2)
        return np.ascontiguousarray(image[:, :, 2::-1])  # BGR(A) -> RGB
    try:
        from PIL import Image

        with Image.open(path) as pil_image:
            pil_image.seek(0)
            return np.asarray(pil_image.convert("RGB"))
    except Exception as exc:  # PIL raises many types for bad files
        raise ValueError(f"cannot read image {path!r}: {exc}") from exc
