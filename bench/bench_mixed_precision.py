"""Mixed precision vs FP32: loss curves over a short run, and time per iteration.

Three runs from the same initial weights on the same data stream:
``fp32`` (noise seed 0), ``fp32'`` (noise seed 1: how far two FP32 runs drift
apart from the noise alone) and the mixed-precision run (noise seed 0). The
mixed run matches FP32 "within noise" when its distance to ``fp32`` is no
larger than the ``fp32'``-``fp32`` distance (mean absolute difference of each
loss over the run, after a smoothing window).

Run: ``python bench/bench_mixed_precision.py [--preset quick] [--steps 40]
[--precision bfloat16]``. The default preset is ``tiny`` because bfloat16 is
slow on CPUs without bfloat16 arithmetic (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import sys

import _common

TERMS = ("g_loss", "d_loss", "ae", "ae_zx", "gp_loss", "kl")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--window", type=int, default=5, help="moving-average window")
    p.add_argument("--precision", default="bfloat16", choices=("bfloat16", "float16"))
    p.add_argument("--onednn", type=int, default=1, choices=(0, 1))
    args = p.parse_args(argv)
    _common.configure_env(onednn=bool(args.onednn))
    import keras
    import numpy as np
    import tensorflow as tf

    from piigan_tf.builders import build_piigan, training_dataset
    from piigan_tf.config import load_config
    from piigan_tf.data import read_flist, resolve_dataset, scan_files
    from piigan_tf.model import PiiGAN

    c = load_config(preset=args.preset)
    files, _ = scan_files(read_flist(resolve_dataset(c.DATASET, c.DATA_DIR)[0]))
    print(f"machine: {_common.machine_description()}")
    print(f"preset {args.preset}: {c.img_hw[0]}x{c.img_hw[1]}, batch {c.BATCH_SIZE}, "
          f"{args.steps} iterations, dataset {c.DATASET}")
    keras.utils.set_random_seed(0)
    init = PiiGAN.from_config_object(c)
    init.build()
    weights = init.get_weights()

    def run(name, policy, noise_seed):
        # What train.py builds and streams; only the noise seed differs.
        model = build_piigan(c, policy)
        model.set_weights(weights)
        ds = training_dataset(c, files, noise_seed=noise_seed)
        step = tf.function(model.train_step)
        curves = {t: [] for t in TERMS}
        timer = _common.Timer()
        for i, data in enumerate(ds.take(args.steps)):
            for tracker in model.metrics:  # per-step values, not running means
                tracker.reset_state()
            out = _common.block(timer.run(step, data) if i else step(data))
            for t in TERMS:
                curves[t].append(float(out[t]))
        print(f"{name:8s} {timer.median_wall:.2f} s/iteration wall "
              f"({timer.median_cpu:.2f} CPU/cores), final g_loss {curves['g_loss'][-1]:.4f}",
              flush=True)
        return curves, timer

    fp32, t32 = run("fp32", None, 0)
    fp32b, _ = run("fp32'", None, 1)
    mixed, tmix = run(args.precision, args.precision, 0)

    def smooth(v):
        v = np.asarray(v)
        k = min(args.window, len(v))
        return np.convolve(v, np.ones(k) / k, mode="valid")

    print(f"{'term':8s} {'|mixed - fp32|':>15s} {'|fp32` - fp32|':>15s}  within noise")
    within = []
    for t in TERMS:
        d_mixed = float(np.mean(np.abs(smooth(mixed[t]) - smooth(fp32[t]))))
        d_noise = float(np.mean(np.abs(smooth(fp32b[t]) - smooth(fp32[t]))))
        ok = d_mixed <= d_noise
        within.append(ok)
        print(f"{t:8s} {d_mixed:15.4g} {d_noise:15.4g}  {'yes' if ok else 'NO'}")
    print("curves (every 5th step, fp32 / fp32' / mixed):")
    for t in ("g_loss", "d_loss", "ae"):
        print(f"  {t}: " + "  ".join(f"{fp32[t][i]:.3f}/{fp32b[t][i]:.3f}/{mixed[t][i]:.3f}"
                                      for i in range(0, args.steps, 5)))
    print(f"machine after: {_common.machine_description()}")
    tag = "bf16" if args.precision == "bfloat16" else "fp16"
    _common.result(f"mixed_{tag}_terms_within_noise", f"{sum(within)}/{len(within)}")
    _common.result(f"mixed_{tag}_speedup_{args.preset}", t32.median_wall / tmix.median_wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
