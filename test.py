"""Sample many completions of masked images with a trained PiiGAN.

Examples:
    python test.py --num_samples 10                      # the shipped face model (or your latest run)
    python test.py --checkpoint_dir checkpoints/sample   # after `python train.py --preset quick`
    python test.py --image photo.png --mask hole.png     # your image; white in the mask = hole
    python test.py --image photos/ --mask_type free_form --seed 3 --output_dir outputs/photos
    python test.py --saved_model export/piigan           # the exported SavedModel instead

Defaults: the most recently written checkpoint under checkpoints/, else the
shipped face model pretrained/celeba64; for a face model the astronaut's face
from scikit-image (public domain), framed like CelebA, else a few validation
images of the embedded sample set, brought to the training size as training
did; the reference's mask (a HEIGHT x WIDTH hole at the centre).
The grid (one row per image: original | masked, hole white | samples) goes to
outputs/samples.png. Images of any size work: they are padded to a multiple
of 8 internally and the results cropped back. A mask with no hole gives the
image back unchanged.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MASK_TYPES = ("center", "box", "random_box", "free_form")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_samples", type=int, default=10,
                   help="completions per image, from one batched pass (split into several only "
                        "where one pass would exceed Inpainter.max_pixels; default 10)")
    p.add_argument("--image", default=None,
                   help="an image file or a folder of images (default: the model's examples: "
                        "a public-domain face for a face model, else sample-set images)")
    p.add_argument("--num_images", type=int, default=4,
                   help="how many sample-set images to use when --image is not given (default 4)")
    p.add_argument("--mask", default=None,
                   help="mask image, white (> 127) = hole; any size, resized to each image "
                        "with nearest-neighbour")
    p.add_argument("--mask_type", choices=MASK_TYPES, default="center",
                   help="mask to draw when --mask is not given: center = the reference's "
                        "HEIGHT x WIDTH box at the centre (default); box = the training box "
                        "(centred, jittered); random_box; free_form (seeded by --seed)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint_dir", default=None,
                     help="training checkpoint folder or shipped model folder (default: the "
                          "most recent under checkpoints/, else pretrained/celeba64)")
    src.add_argument("--saved_model", default=None,
                     help="SavedModel from export.py: a version folder or its base folder "
                          "(highest version)")
    p.add_argument("--output", default="outputs/samples.png",
                   help="grid PNG: original | masked | samples, one row per image "
                        "(default outputs/samples.png; '' to skip)")
    p.add_argument("--output_dir", default=None,
                   help="also write each sample as its own PNG here")
    p.add_argument("--seed", type=int, default=None,
                   help="noise (and random mask) seed; same seed, same samples "
                        "(default: random, printed)")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resize every image to H x W first (default: keep sizes; any size works)")
    p.add_argument("--zoom", type=int, default=1,
                   help="enlarge the grid's cells this many times (nearest neighbour), e.g. 3 "
                        "for a 64x64 model (default 1; sample files stay at full resolution)")
    p.add_argument("--batch_size", type=int, default=4,
                   help="images of equal size per forward pass (each brings num_samples rows)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


# A grid PNG larger than this is refused (it is built in memory, and no
# viewer opens it): write the samples one file each instead.
MAX_GRID_BYTES = 2 * 1024**3


class UsageError(Exception):
    """A problem with the command line or the inputs; printed without a traceback."""


def load_inpainter(args):
    from piigan_tf.inference import CheckpointNotFoundError, Inpainter

    try:
        if args.saved_model:
            return Inpainter.from_saved_model(args.saved_model)
        return Inpainter.from_checkpoint(args.checkpoint_dir)
    except (CheckpointNotFoundError, FileNotFoundError, RuntimeError, ValueError) as e:
        raise UsageError(str(e)) from None


def load_images(args, config) -> list[tuple[str, "np.ndarray"]]:  # noqa: F821
    """(name, uint8 RGB) pairs from --image, or the model's examples (``example_images``)."""
    import numpy as np
    from piigan_tf.data import list_images, load_image_file
    from piigan_tf.inference import example_images

    if args.image is None:
        return example_images(config, args.num_images)

    path = Path(args.image)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise UsageError(f"no image files (png, jpg, bmp, ...) in folder {path}")
    elif path.is_file():
        files = [str(path)]
    else:
        raise UsageError(f"--image {path}: no such file or folder")
    images = []
    for f in files:
        try:
            image = load_image_file(f)
        except (ValueError, OSError) as e:
            if len(files) == 1:
                raise UsageError(f"{f} is not a readable image: {e}") from None
            logging.getLogger("piigan_tf").warning("skipping %s: %s", f, e)
            continue
        images.append((Path(f).stem, np.asarray(image)))
    if not images:
        raise UsageError(f"none of the {len(files)} files in {path} could be read as an image")
    return images


def make_masks(args, images, config, seed: int) -> list:
    """One uint8 [H, W, 1] mask (255 = hole) per image: --mask, else image ``i`` gets
    ``image_mask(--mask_type, [seed, i], ...)``."""
    import numpy as np
    from piigan_tf.data import image_mask, load_mask_file

    box_hw = config.box_hw if config else (64, 64)
    delta = (config.MAX_DELTA_HEIGHT, config.MAX_DELTA_WIDTH) if config else (8, 8)
    masks = []
    for i, (_, image) in enumerate(images):
        hw = image.shape[:2]
        if args.mask:
            try:
                mask = load_mask_file(args.mask, hw)
            except (ValueError, OSError) as e:
                raise UsageError(f"--mask {args.mask}: {e}") from None
            masks.append((mask > 0.5).astype(np.uint8) * 255)
        else:
            masks.append(image_mask(args.mask_type, [seed, i], hw, box_hw, delta))
    return masks


def batches(images, batch_size: int):
    """Runs of consecutive equal-sized images, at most batch_size long: [(start, stop)]."""
    out, start = [], 0
    for i in range(1, len(images) + 1):
        if i == len(images) or i - start == batch_size or \
                images[i][1].shape != images[start][1].shape:
            out.append((start, i))
            start = i
    return out


def plan_calls(images, batch_size: int, num_samples: int, max_pixels: int):
    """Splits the work into ``Inpainter.sample`` calls under its ``max_pixels``.

    Returns ``[(start, stop, first, count)]``: images ``start:stop`` (equal
    sizes, at most ``batch_size``), samples ``first .. first + count - 1`` of
    each. Normally one call per run of images with all samples; a request
    too large for one call is split by images, then by samples, so any
    ``--num_samples`` runs in bounded memory.
    """
    calls = []
    for start, stop in batches(images, batch_size):
        h, w = images[start][1].shape[:2]
        per_call = max_pixels // (h * w)  # samples of this size one call may hold
        if per_call < 1:
            raise UsageError(
                f"{images[start][0]} is {h}x{w}: one completion of it is over the "
                f"{max_pixels:,}-pixel limit of a call; resize it with --size H W")
        if num_samples <= per_call:
            step = max(1, min(stop - start, per_call // num_samples))
            calls += [(i, min(i + step, stop), 0, num_samples) for i in range(start, stop, step)]
        else:
            calls += [(i, i + 1, first, min(per_call, num_samples - first))
                      for i in range(start, stop) for first in range(0, num_samples, per_call)]
    return calls


def grid(rows, pad: int = 2) -> "np.ndarray":  # noqa: F821
    """Stacks rows of equal-height cells; rows are padded to one width with white."""
    import numpy as np

    lines = []
    for cells in rows:
        h = cells[0].shape[0]
        sep = np.full([h, pad, 3], 255, np.uint8)
        line = [c for cell in cells for c in (cell, sep)][:-1]
        lines.append(np.concatenate(line, axis=1))
    width = max(line.shape[1] for line in lines)
    out = []
    for line in lines:
        line = np.pad(line, [[0, pad], [0, width - line.shape[1]], [0, 0]], constant_values=255)
        out.append(line)
    return np.concatenate(out, axis=0)[:-pad]


def write_png(path: Path, image) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image[:, :, ::-1]):
        raise UsageError(f"cannot write {path}")


def run(args) -> int:
    import numpy as np
    import tensorflow as tf
    from tqdm.auto import tqdm

    if args.num_samples < 1:
        raise UsageError(f"--num_samples must be at least 1, got {args.num_samples}")
    if args.batch_size < 1:
        raise UsageError(f"--batch_size must be at least 1, got {args.batch_size}")
    if not 1 <= args.zoom <= 16:
        raise UsageError(f"--zoom must be in 1..16, got {args.zoom}")
    if args.seed is not None and not 0 <= args.seed < 2**31 - 1:
        raise UsageError(f"--seed must be in [0, 2**31 - 1), got {args.seed}")
    inpainter = load_inpainter(args)
    config = inpainter.config
    images = load_images(args, config)
    if args.size:
        import cv2

        h, w = args.size
        if h < 1 or w < 1:
            raise UsageError(f"--size must be positive, got {h} {w}")
        images = [(n, cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)) for n, im in images]
    seed = args.seed
    if seed is None:
        import secrets

        seed = secrets.randbelow(2**31 - 1)
    masks = make_masks(args, images, config, seed)
    for (name, _), mask in zip(images, masks):
        if not mask.any():
            print(f"note: the mask of {name} has no hole; its samples are the image unchanged",
                  file=sys.stderr)
    calls = plan_calls(images, args.batch_size, args.num_samples, inpainter.max_pixels)
    if args.output:
        grid_bytes = sum((2 + args.num_samples) * im.size for _, im in images) * args.zoom**2
        if grid_bytes > MAX_GRID_BYTES:
            raise UsageError(
                f"the grid of {len(images)} image(s) x {args.num_samples:,} samples would take "
                f"{grid_bytes / 1e9:.1f} GB; write the samples as separate files instead: "
                "--output '' --output_dir DIR (or ask for fewer --num_samples)")
    rows = [[] for _ in images]
    bar = tqdm(total=len(images) * args.num_samples, unit="sample", desc="sampling",
               disable=args.no_progress or len(calls) < 2)
    try:
        for start, stop, first, count in calls:
            batch = np.stack([im for _, im in images[start:stop]])
            batch_masks = np.stack(masks[start:stop])
            try:
                # The offsets make each call's samples its part of the whole
                # request's: the same for any --batch_size or split.
                samples = inpainter.sample(batch, batch_masks, count, seed=seed,
                                           first_image=start, first_sample=first)
            except (ValueError, tf.errors.InvalidArgumentError) as e:
                raise UsageError(getattr(e, "message", str(e))) from None
            except tf.errors.ResourceExhaustedError:
                raise UsageError("out of memory: use smaller images (--size H W), fewer "
                                 "--num_samples or a smaller --batch_size") from None
            for i in range(stop - start):
                name, image = images[start + i]
                if first == 0:  # the image's first call: its original and masked cells
                    masked = np.where(batch_masks[i] > 0, np.uint8(255), image)
                    if args.output:
                        rows[start + i] += [image, masked]
                    if args.output_dir:
                        write_png(Path(args.output_dir) / f"{name}_masked.png", masked)
                if args.output:
                    rows[start + i] += list(samples[i])
                if args.output_dir:
                    for j, sample in enumerate(samples[i], start=first):
                        write_png(Path(args.output_dir) / f"{name}_sample{j:02d}.png", sample)
            bar.update((stop - start) * count)
    finally:
        bar.close()
    if args.output:
        if args.zoom > 1:
            rows = [[np.repeat(np.repeat(c, args.zoom, 0), args.zoom, 1) for c in r] for r in rows]
        write_png(Path(args.output), grid(rows))
    where = ", ".join(x for x in (args.output, args.output_dir) if x) or "nowhere (no output)"
    print(f"{len(images)} image(s) x {args.num_samples} samples from {inpainter.source} "
          f"(seed {seed}; --seed {seed} reproduces them) -> {where}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
