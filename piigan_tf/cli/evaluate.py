"""Evaluate a trained PiiGAN against classical inpainting: quality and diversity.

Examples:
    python evaluate.py --checkpoint_dir checkpoints/celeba_real --max_images 100
    python evaluate.py --saved_model export/piigan --data data/celeba/val.flist
    python evaluate.py --mask_type free_form --seed 3 --output_dir eval/free_form
    python evaluate.py --masks my_masks/            # mask images, white = hole, used in turn
    python evaluate.py --baselines_only --data photos/
    python evaluate.py --checkpoint_dir pretrained/mauflex128 --crop grid   # 4 windows a tile

Each image is brought to the model's IMG_SHAPES as in training (resized for a
model trained with RANDOM_CROP false, else a centre crop; --crop grid takes
several native windows of each image instead), given one mask
(default: the reference's HEIGHT x WIDTH box at the centre) and completed
--num_samples times by PiiGAN and once each by OpenCV Telea and Navier-Stokes.
Written to --output_dir: results.md (table), metrics.json, per_image.csv,
metrics.png (bar chart per metric) and grid.png (truth | input | baselines |
samples). LPIPS and FID need the ImageNet weights of VGG16/InceptionV3, which
Keras downloads to ~/.keras/models on first use; without them they are skipped
with a note. Metric definitions: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from piigan_tf.cli import common
from piigan_tf.cli.common import add_blend, add_model_source, load_tensorflow, new_parser



def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    src = add_model_source(
        p, checkpoint_help="training checkpoint folder (default: the most recent under "
                           "checkpoints/)",
        saved_model_help="SavedModel from export.py (a version folder or its base folder)")
    src.add_argument("--baselines_only", action="store_true",
                     help="no model: evaluate the OpenCV baselines only (needs --data)")
    p.add_argument("--data", default=None,
                   help="file list (.flist/.txt) or image folder (default: the validation list of "
                        "the dataset the model was trained on)")
    p.add_argument("--num_samples", type=int, default=10, help="PiiGAN completions per image (default 10)")
    p.add_argument("--max_images", type=int, default=None,
                   help="evaluate the first this many images (default: all)")
    p.add_argument("--output_dir", default="eval", help="where the report goes (default eval/)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds masks, random crops and noise; same seed, same figures (default 0)")
    p.add_argument("--mask_type", choices=("center", "box", "random_box", "free_form"),
                   default="center",
                   help="center = the reference test mask, a HEIGHT x WIDTH hole at the centre "
                        "(default); box = the training box (centred, jittered); random_box; free_form")
    p.add_argument("--masks", default=None,
                   help="folder of mask images (white = hole) used in turn instead of --mask_type")
    p.add_argument("--crop", choices=("resize", "center", "random", "grid"), default=None,
                   help="how images are brought to the model's size: resize (whole image), "
                        "center (centre window at native scale), random (the training "
                        "RANDOM_CROP seeded by --seed) or grid (--windows_per_side squared "
                        "evenly spread native windows of each image); default: as the model "
                        "was trained (resize for RANDOM_CROP false, else center)")
    p.add_argument("--windows_per_side", type=int, default=2,
                   help="with --crop grid: windows a row and a column of each image, the outer "
                        "ones touching its edges (default 2: four windows an image)")
    p.add_argument("--window", type=int, default=None,
                   help="least side of the window each hole is completed in (default: the "
                        "model's; images no larger are completed whole, as test.py does)")
    p.add_argument("--batch_size", type=int, default=4,
                   help="images per generator pass, each bringing num_samples rows (default 4)")
    add_blend(p, "model's completions")
    p.add_argument("--grid_images", type=int, default=4, help="rows of grid.png (default 4)")
    p.add_argument("--grid_samples", type=int, default=6, help="samples shown per row of grid.png")
    p.add_argument("--no_perceptual", action="store_true",
                   help="skip LPIPS and FID even if the ImageNet weights are available")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    load_tensorflow(args.verbose)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("num_samples", "batch_size", "windows_per_side"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.max_images is not None and args.max_images < 1:
        parser.error("--max_images must be at least 1")
    if args.baselines_only and args.data is None:
        parser.error("--baselines_only needs --data (there is no model config to name a dataset)")

    from piigan_tf.evaluation import evaluate_files, write_report
    from piigan_tf.loading import CheckpointNotFoundError

    inpainter = None
    try:
        if args.saved_model or not args.baselines_only:
            inpainter = common.load_inpainter(args)
        if inpainter is not None and args.window is not None:
            inpainter.window = inpainter._check_window(args.window)
    except (CheckpointNotFoundError, FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        result = evaluate_files(
            inpainter, args.data, num_samples=args.num_samples, max_images=args.max_images,
            seed=args.seed, mask_type=args.mask_type, mask_dir=args.masks, crop=args.crop,
            windows_per_side=args.windows_per_side,
            batch_size=args.batch_size, perceptual=not args.no_perceptual,
            num_examples=args.grid_images, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = write_report(result, args.output_dir, grid_samples=args.grid_samples)
    print(result.table())
    for note in result.notes:
        print(f"note: {note}")
    print(f"{result.settings['num_images']} images in {time.perf_counter() - start:.0f} s; report: "
          + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
