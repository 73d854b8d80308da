"""Sample many completions of masked images with a trained PiiGAN.

Examples:
    python test.py --num_samples 10                      # the shipped face model (or your latest run)
    python test.py --checkpoint_dir checkpoints/sample   # after `python train.py --preset quick`
    python test.py --image photo.png --mask hole.png     # your image; white in the mask = hole
    python test.py --image photos/ --mask_type free_form --seed 3 --output_dir outputs/photos
    python test.py --saved_model export/piigan           # the exported SavedModel instead
    python test.py --show_flow --zoom 3                  # + where attention copied from

Defaults: the most recently written checkpoint under checkpoints/, else the
shipped face model pretrained/celeba64; for a face model the astronaut's face
from scikit-image (public domain), framed like CelebA, else a few validation
images of the embedded sample set, brought to the training size as training
did; the reference's mask (a HEIGHT x WIDTH hole at the centre).
The grid (one row per image: original | masked, hole white | samples) goes to
outputs/samples.png; with --show_flow also outputs/samples_flow.png (first
sample | its attention offsets). Images of any size work: they are padded to a
multiple of 8 internally and the results cropped back. A mask with no hole
gives the image back unchanged. (The work is done by piigan_tf.sampling.)
"""

from __future__ import annotations

import argparse
import logging
import sys

from piigan_tf.cli import common
from piigan_tf.cli.common import add_blend, add_model_source, load_tensorflow, new_parser


MASK_TYPES = ("center", "box", "random_box", "free_form")


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("--num_samples", type=int, default=10,
                   help="completions per image, from one batched pass (split into several only "
                        "where one pass would exceed Inpainter.max_pixels; default 10)")
    p.add_argument("--image", default=None,
                   help="an image file or a folder of images (default: the model's examples: "
                        "a public-domain face for a face model, scikit-image's grass and gravel "
                        "in aerial colours for an aerial one, else sample-set images)")
    p.add_argument("--num_images", type=int, default=4,
                   help="how many sample-set images to use when --image is not given (default 4)")
    p.add_argument("--mask", default=None,
                   help="mask image, white (> 127) = hole; any size, resized to each image "
                        "with nearest-neighbour")
    p.add_argument("--mask_type", choices=MASK_TYPES, default="center",
                   help="mask to draw when --mask is not given: center = the reference's "
                        "HEIGHT x WIDTH box at the centre (default); box = the training box "
                        "(centred, jittered); random_box; free_form (seeded by --seed)")
    add_model_source(
        p, checkpoint_help="training checkpoint folder or shipped model folder (default: the "
                           "most recent under checkpoints/, else pretrained/celeba64)",
        saved_model_help="SavedModel from export.py: a version folder or its base folder "
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
    p.add_argument("--show_flow", action="store_true",
                   help="also write where the contextual attention copied from for each "
                        "image's first sample (hue = direction, brightness = distance, "
                        "black = no offset): OUTPUT with _flow added (first sample | offsets "
                        "per row) and NAME_flow.png in --output_dir; needs --checkpoint_dir, "
                        "not --saved_model")
    p.add_argument("--window", type=int, default=None,
                   help="least side of the window each group of holes is completed in, with "
                        "its surroundings (default: the model's, 256 for the 64x64 face model); "
                        "images no larger are completed whole; a larger window sees more "
                        "context and costs more (with --saved_model: the exported one)")
    p.add_argument("--max_memory", type=float, default=None, metavar="GB",
                   help="refuse a request whose estimated peak memory is over this many GB "
                        "(default: the memory the machine has available)")
    p.add_argument("--batch_size", type=int, default=4,
                   help="images of equal size per forward pass (each brings num_samples rows)")
    add_blend(p)
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


class UsageError(Exception):
    """A problem with the command line or the inputs; printed without a traceback."""


def load_inpainter(args):
    from piigan_tf.loading import CheckpointNotFoundError

    try:
        return common.load_inpainter(args)
    except (CheckpointNotFoundError, FileNotFoundError, RuntimeError, ValueError) as e:
        raise UsageError(str(e)) from None


def run(args) -> int:
    from piigan_tf import sampling

    if args.num_samples < 1:
        raise UsageError(f"--num_samples must be at least 1, got {args.num_samples}")
    if args.batch_size < 1:
        raise UsageError(f"--batch_size must be at least 1, got {args.batch_size}")
    if not 1 <= args.zoom <= 16:
        raise UsageError(f"--zoom must be in 1..16, got {args.zoom}")
    if args.seed is not None and not 0 <= args.seed < 2**31 - 1:
        raise UsageError(f"--seed must be in [0, 2**31 - 1), got {args.seed}")
    if args.window is not None and args.window < 8:
        raise UsageError(f"--window must be at least 8 pixels, got {args.window}")
    if args.max_memory is not None and args.max_memory <= 0:
        raise UsageError(f"--max_memory must be positive, got {args.max_memory}")
    inpainter = load_inpainter(args)
    if args.window is not None:
        try:
            inpainter.window = inpainter._check_window(args.window)
        except ValueError as e:
            raise UsageError(f"--window: {e}") from None
    if args.max_memory is not None:
        inpainter.max_memory = args.max_memory * 1e9
    if args.show_flow and not sampling.has_generator(inpainter):
        raise UsageError("--show_flow needs the generator's weights: use --checkpoint_dir "
                         "(an exported SavedModel returns completions only)")
    config = inpainter.config
    images = sampling.load_images(args.image, args.num_images, config,
                                  max_bytes=inpainter.memory_limit(),
                                  num_samples=args.num_samples)
    if args.size:
        images = sampling.resize_images(images, args.size)
    for note in sampling.scale_notes(images, config):
        print(note, file=sys.stderr)
    seed = args.seed
    if seed is None:
        import secrets

        seed = secrets.randbelow(2**31 - 1)
    masks = sampling.make_masks(images, config, seed, args.mask, args.mask_type)
    for (name, _), mask in zip(images, masks):
        if not mask.any():
            print(f"note: the mask of {name} has no hole; its samples are the image unchanged",
                  file=sys.stderr)
        elif mask.all():
            print(f"note: the mask of {name} is all hole: the whole image is generated, with "
                  "no context to fill it from", file=sys.stderr)
    sampling.write_samples(inpainter, images, masks, args.num_samples, seed,
                           batch_size=args.batch_size, grid_path=args.output or None,
                           output_dir=args.output_dir, zoom=args.zoom,
                           progress=not args.no_progress)
    written = [x for x in (args.output, args.output_dir) if x]
    if args.show_flow:
        flow_grid = sampling.write_flow(inpainter, images, masks, seed,
                                        batch_size=args.batch_size, grid_path=args.output or None,
                                        output_dir=args.output_dir, zoom=args.zoom)
        written += [str(flow_grid)] if flow_grid else []
    where = ", ".join(written) or "nowhere (no output)"
    blend = " --blend poisson" if inpainter.blend == "poisson" else ""
    print(f"{len(images)} image(s) x {args.num_samples} samples from {inpainter.source} "
          f"(seed {seed}; --seed {seed}{blend} reproduces them) -> {where}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    load_tensorflow(args.verbose)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from piigan_tf.sampling import RequestError

    try:
        return run(args)
    except (UsageError, RequestError, OSError) as e:  # OSError: a PNG that cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
