"""What the texture metrics say on real images: smears, real texture, blur.

Scores, on native-scale windows of a folder of images (e.g. the MauFlex
validation frame) with the centred hole, fills whose nature is known:

* the classical baselines (OpenCV Telea, Navier-Stokes, FSR);
* ``flat``: the mean colour of the window's known pixels;
* ``copy``: a real block of the same size copied from elsewhere in the same
  image (real texture, wrong content);
* ``copy_blur``: that block blurred (Gaussian, sigma 1.5);

with every figure ``evaluate.py`` reports (hole PSNR, SSIM, L1, colour offset, texture
ratio, SWD and its noise floor, the seam ratio and the real images' own). It shows why PSNR alone cannot judge a fill
on textured images: smooth fills and a flat colour score close to one
another, a real texture loses PSNR, while the texture ratio and SWD put the
real texture far ahead. No model is involved.

Run::

    python bench/texture_metrics.py --data data/mauflex/val.flist            # 128x128 windows, 64x64 hole
    python bench/texture_metrics.py --data data/mauflex/val.flist --windows 2 --window 128 --hole 64
    python bench/texture_metrics.py --data data/mauflex/val.flist --shift 4   # off the JPEG blocks
"""

from __future__ import annotations

import argparse
import sys
import time

import _common


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="file list or folder of images")
    p.add_argument("--window", type=int, default=128, help="window side at native scale")
    p.add_argument("--hole", type=int, default=64, help="centred hole side")
    p.add_argument("--windows", type=int, default=2,
                   help="windows per image side, evenly spread (2: four windows an image)")
    p.add_argument("--shift", type=int, default=0,
                   help="move the windows S pixels down and right, inside the image cut by 8 "
                        "pixels (with S = 4 the holes' borders leave the JPEG 8x8 block edges "
                        "they lie on at S = 0)")
    p.add_argument("--max_images", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 0 <= args.shift <= 8:
        p.error("--shift must be between 0 and 8")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    _common.configure_env()
    from piigan_tf.cli.common import load_tensorflow

    load_tensorflow(verbose=False)
    import cv2
    import numpy as np

    from piigan_tf import evaluation as E
    from piigan_tf import metrics as M
    from piigan_tf.data import grid_windows, load_image_file

    files = E.list_eval_files(args.data)[:args.max_images]
    rng = np.random.default_rng(args.seed)
    side, hole = args.window, args.hole
    top = (side - hole) // 2
    images, copies = [], []
    for path in files:
        try:
            image = load_image_file(path)
        except (ValueError, OSError) as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        if args.shift:
            image = image[args.shift:image.shape[0] - 8 + args.shift,
                          args.shift:image.shape[1] - 8 + args.shift]
        if min(image.shape[:2]) < max(side, 2 * hole):
            print(f"skipping {path}: smaller than the window", file=sys.stderr)
            continue
        h, w = image.shape[:2]
        for (y, x), window in grid_windows(image, (side, side), args.windows):
            # A block from elsewhere in the image, not overlapping this window's hole.
            while True:
                by, bx = rng.integers(0, h - hole + 1), rng.integers(0, w - hole + 1)
                if abs(by - (y + top)) >= hole or abs(bx - (x + top)) >= hole:
                    break
            images.append(window)
            copies.append(image[by:by + hole, bx:bx + hole])
    if not images:
        print("error: no image could be read", file=sys.stderr)
        return 2
    images = np.stack(images)
    masks = np.zeros(images.shape[:3] + (1,), np.uint8)
    masks[:, top:top + hole, top:top + hole] = 1
    t0 = time.perf_counter()
    baselines, notes = E.available_baselines()
    completions, _ = E.complete_batch(None, images, masks, 1, args.seed, baselines=baselines)
    inside = np.s_[:, top:top + hole, top:top + hole]
    flat = images.copy()
    known_mean = [im[m[..., 0] == 0].mean(axis=0) for im, m in zip(images, masks)]
    flat[inside] = np.round(np.stack(known_mean))[:, None, None, :].astype(np.uint8)
    copy = images.copy()
    copy[inside] = np.stack(copies)
    blurred = images.copy()
    blurred[inside] = np.stack([cv2.GaussianBlur(c, (0, 0), 1.5) for c in copies])
    for key, value in (("flat", flat), ("copy", copy), ("copy_blur", blurred)):
        completions[key] = value[:, np.newaxis]
    rows, truth_tv = E.score_batch(images, masks, completions, [str(i) for i in range(len(images))])
    patches = E.HolePatchSets(args.seed)
    patches.add(images, masks, completions)
    means = E.mean_scores(rows, list(completions))
    swd, floor = patches.scores()
    print(f"machine: {_common.machine_description()}")
    print(f"{len(images)} windows {side}x{side} of {len(files)} images from {args.data}, "
          f"centred {hole}x{hole} hole; {time.perf_counter() - t0:.1f} s")
    for note in notes:
        print(f"note: {note}")
    print(f"{'fill':<14}{'PSNR hole':>10}{'SSIM hole':>10}{'L1 hole':>9}{'colour':>8}{'texture':>9}"
          f"{'SWD':>8}{'seam':>7}")
    for key in completions:
        key_rows = [r for r in rows if r["method"] == key]
        ratio = M.texture_ratio([r["tv_inside"] for r in key_rows], [t["tv_inside"] for t in truth_tv])
        m = means[key]
        seam = M.seam_ratio([r["seam_across"] for r in key_rows], [r["seam_beside"] for r in key_rows])
        print(f"{key:<14}{m['psnr_hole']:>10.2f}{m['ssim_hole']:>10.3f}{m['l1_hole']:>9.4f}"
              f"{m['colour_offset_hole']:>8.4f}{ratio:>9.3f}{swd[key]:>8.1f}{seam:>7.3f}")
        print(f"RESULT {key}_psnr_hole {m['psnr_hole']:.3f}")
        print(f"RESULT {key}_texture_ratio {ratio:.4f}")
        print(f"RESULT {key}_swd {swd[key]:.2f}")
        print(f"RESULT {key}_seam {seam:.4f}")
    print(f"SWD noise floor (two random halves of the real holes' patches): {floor:.1f}")
    print(f"RESULT swd_noise_floor {floor:.2f}")
    truth_seam = M.seam_ratio([t["seam_across"] for t in truth_tv], [t["seam_beside"] for t in truth_tv])
    print(f"seam ratio of the real images (no fill): {truth_seam:.3f}")
    print(f"RESULT truth_seam {truth_seam:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
