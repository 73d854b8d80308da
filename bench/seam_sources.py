"""Where a pasted hole's seam comes from, and what each compositing rule leaves of it.

On native-scale windows of a folder of images (e.g. the MauFlex validation
frame) with the centred hole, the model (``--checkpoint_dir``) fills each
window once (noise seed ``--seed``), and the script prints:

* the seam ratio (``metrics.seam_ratio``) of the real windows, of the
  generator's raw output (its own version of the whole window, nothing
  pasted), of that output pasted into the known pixels (the reference's rule,
  ``--blend paste``), of the paste with the fill shifted by the mean
  difference on the 2-pixel known ring around the hole (a brightness
  correction only), and of ``--blend poisson``;
* the hole PSNR and the texture ratio of each composite;
* how far the raw output is from the real known pixels, by distance from the
  hole's border (grey levels): what a paste leaves as a step.

    python bench/seam_sources.py --checkpoint_dir pretrained/mauflex128 --data data/mauflex/val.flist

    RESULT seam_truth / seam_raw / seam_paste / seam_ring_offset / seam_poisson
    RESULT psnr_hole_paste / psnr_hole_poisson, texture_ratio_paste / _poisson
    RESULT known_error_d1 / known_error_d20
"""

from __future__ import annotations

import argparse
import sys

import _common


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint_dir", default=str(_common.ROOT / "pretrained" / "mauflex128"))
    p.add_argument("--data", required=True, help="file list or folder of images")
    p.add_argument("--windows", type=int, default=2,
                   help="windows per image side, evenly spread (2: four windows an image)")
    p.add_argument("--max_images", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=8)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    _common.configure_env()
    from piigan_tf.cli.common import load_tensorflow

    load_tensorflow(verbose=False)
    import numpy as np
    import tensorflow as tf
    from scipy import ndimage

    from piigan_tf import evaluation as E
    from piigan_tf import metrics as M
    from piigan_tf.blending import poisson_blend
    from piigan_tf.loading import load_generator

    generator, config, source = load_generator(args.checkpoint_dir)
    files = E.list_eval_files(args.data)[:args.max_images]
    _, images = E.load_eval_images(files, config.img_hw, "grid", args.seed,
                                   windows_per_side=args.windows)
    masks = E.make_eval_masks(len(images), config.img_hw, config.box_hw, "center")
    print(_common.machine_description())
    print(f"{source}: {len(images)} windows of {config.img_hw[0]}x{config.img_hw[1]} "
          f"from {len(files)} images, centred {config.box_hw[0]}x{config.box_hw[1]} hole")

    truth = images.astype(np.float32)
    hole = masks.astype(np.float32)
    rng = np.random.default_rng(args.seed)
    raw = []
    for i in range(0, len(images), args.batch_size):
        x = truth[i:i + args.batch_size] / 127.5 - 1
        m = hole[i:i + args.batch_size]
        z = rng.standard_normal(m.shape).astype(np.float32)
        _, refined = generator((tf.constant(x * (1 - m)), tf.constant(m), tf.constant(z)))
        raw.append((np.clip(refined.numpy(), -1, 1) + 1) * 127.5)
    raw = np.concatenate(raw)

    inside = masks[..., 0] > 0
    outside_distance = np.stack([ndimage.distance_transform_edt(~h) for h in inside])
    ring = (outside_distance >= 1) & (outside_distance < 3)
    offsets = np.stack([(truth[i] - raw[i])[ring[i]].mean(0) for i in range(len(truth))])
    composites = {
        "raw": raw,
        "paste": truth * (1 - hole) + raw * hole,
        "ring_offset": truth * (1 - hole) + np.clip(raw + offsets[:, None, None], 0, 255) * hole,
        "poisson": poisson_blend(raw, truth, hole).numpy(),
    }
    composites = {k: np.round(np.clip(v, 0, 255)) for k, v in composites.items()}

    def seam(x):
        steps = [M.border_steps(x[i], masks[i]) for i in range(len(x))]
        return M.seam_ratio([a for a, _ in steps], [b for _, b in steps])

    def texture_ratio(x):
        tv = [M.total_variation(x[i], masks[i], within_hole=True) for i in range(len(x))]
        real = [M.total_variation(truth[i], masks[i], within_hole=True) for i in range(len(x))]
        return M.texture_ratio(tv, real)

    print(f"\n{'':32s} {'seam':>6s} {'hole PSNR':>10s} {'texture':>8s}")
    print(f"{'real windows':32s} {seam(truth):6.2f}")
    _common.result("seam_truth", seam(truth))
    labels = {"raw": "raw output (nothing pasted)", "paste": "paste (reference)",
              "ring_offset": "paste, ring brightness matched", "poisson": "poisson"}
    for key, label in labels.items():
        x = composites[key]
        psnr = float(np.mean(M.psnr(x, truth, masks)))
        ratio = texture_ratio(x)
        print(f"{label:32s} {seam(x):6.2f} {psnr:10.2f} {ratio:8.3f}")
        _common.result(f"seam_{key}", seam(x))
        if key != "raw":
            _common.result(f"psnr_hole_{key}", psnr)
            _common.result(f"texture_ratio_{key}", ratio)

    print("\nraw output vs the real known pixels, mean |difference| (grey levels) by distance "
          "from the hole's border:")
    error = np.abs(raw - truth).mean(-1)
    for d in (1, 2, 3, 5, 10, 20, 30):
        band = (outside_distance >= d) & (outside_distance < d + 1)
        if band.any():
            print(f"  {d:2d} px: {error[band].mean():6.2f}")
            if d in (1, 20):
                _common.result(f"known_error_d{d}", float(error[band].mean()))
    print(f"mean |ring brightness offset| {np.abs(offsets).mean():.2f} grey levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
