"""Pluralistic sampling: N samples in one batched pass vs one run per sample.

The reference's test.py ran the graph once per sample. ``Inpainter.sample``
repeats the image N times and runs the generator once on the batch of N.
Both paths here use the same compiled function (``InpaintingModule.sample``)
on a 128x128 image with the reference's 64x64 centre hole; only the number
of calls differs. Weights are random unless --checkpoint_dir is given (speed
does not depend on them).

    python bench/bench_sampling.py [--num_samples 10] [--size 128] [--repeats 9]

Times both paths in --repeats interleaved rounds after one warm-up of each and
prints medians (the speedup is the median of the per-round ratios), then
    RESULT sampling_batched_s <seconds>
    RESULT sampling_loop_s <seconds>
    RESULT sampling_speedup <loop / batched>
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as train.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num_samples", type=int, default=10)
    p.add_argument("--size", type=int, default=128, help="image side (default 128)")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--checkpoint_dir", default=None, help="use trained weights (optional)")
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from piigan_tf.serving import InpaintingModule
    from piigan_tf.inference import center_box_mask
    from piigan_tf.loading import load_generator
    from piigan_tf.networks import Generator

    if args.checkpoint_dir:
        generator, _, _ = load_generator(args.checkpoint_dir)
    else:
        generator = Generator()
        generator.build([(None, args.size, args.size, 3)] * 3)
    module = InpaintingModule(generator, max_samples=max(64, args.num_samples))

    rng = np.random.default_rng(0)
    image = tf.constant(rng.integers(0, 256, (1, args.size, args.size, 3), dtype=np.uint8))
    mask = tf.constant(center_box_mask((args.size, args.size), (args.size // 2,) * 2)[None])
    n = args.num_samples

    def batched():
        return module.sample(image, mask, tf.constant(n), tf.constant(0))["completions"].numpy()

    def loop():
        # One graph run per sample, each with its own seed, as the reference did.
        return [module.sample(image, mask, tf.constant(1), tf.constant(i))["completions"].numpy()
                for i in range(n)]

    def timed(fns):
        """Interleaved rounds after one warm-up of each: per-round times."""
        for fn in fns.values():
            fn()  # warm-up: tracing, allocation, autotuning
        times = {name: [] for name in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        return times

    device = tf.config.list_logical_devices("GPU")
    print(f"device: {device[0].name if device else 'CPU'}; TF {tf.__version__}; "
          f"{n} samples of a {args.size}x{args.size} image, {args.repeats} rounds")
    times = timed({"batched": batched, "loop": loop})
    print("batched runs (s):", " ".join(f"{t:.4f}" for t in times["batched"]))
    print("loop runs (s):   ", " ".join(f"{t:.4f}" for t in times["loop"]))
    t_batched, t_loop = statistics.median(times["batched"]), statistics.median(times["loop"])
    # Median of per-round ratios: the two runs of a round see the same machine.
    speedup = statistics.median(a / b for a, b in zip(times["loop"], times["batched"]))
    per_sample = t_batched / n * 1e3
    print(f"batched: {per_sample:.1f} ms per sample; loop: {t_loop / n * 1e3:.1f} ms per sample")
    print(f"RESULT sampling_batched_s {t_batched:.4f}")
    print(f"RESULT sampling_loop_s {t_loop:.4f}")
    print(f"RESULT sampling_speedup {speedup:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
