"""Benchmark 2: contextual attention at batch 13, vectorised vs a per-sample loop.

The layer as PiiGAN runs it at 128x128: f = b = [13, 32, 32, 128] features,
rate 2, 3x3 matching patches, with a per-sample hole mask. The baseline is
``contextual_attention_loop``, the reference's structure (one conv2d for the
matching and one conv2d_transpose for the pasting per sample, in a Python
loop). Both run as compiled ``tf.function`` graphs; the outputs are compared,
then each is timed (median of ``--repeats`` after a warm-up), forward and
forward + backward (the training case).

Run: ``python bench/bench_attention.py`` (about 1 minute).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import _common


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=13)
    p.add_argument("--size", type=int, default=32, help="feature map side (32 at 128x128)")
    p.add_argument("--channels", type=int, default=128)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--onednn", type=int, default=1, choices=(0, 1))
    args = p.parse_args(argv)
    _common.configure_env(onednn=bool(args.onednn))
    import numpy as np
    import tensorflow as tf

    from piigan_tf.layers.attention import contextual_attention, contextual_attention_loop

    print(f"machine: {_common.machine_description()}")
    rng = np.random.default_rng(0)
    n, s, c = args.batch, args.size, args.channels
    f = tf.constant(rng.normal(size=(n, s, s, c)).astype("float32"))
    masks = np.zeros((n, s, s, 1), "float32")
    for i in range(n):  # a jittered box hole per sample, as in training
        top, left = rng.integers(s // 4 - 2, s // 4 + 3, size=2)
        masks[i, top:top + s // 2, left:left + s // 2] = 1
    masks = tf.constant(masks)

    def forward(layer):
        return tf.function(lambda f, m: layer(f, f, m, 3, 1, rate=2))

    def forward_backward(layer):
        @tf.function
        def run(f, m):
            with tf.GradientTape() as tape:
                tape.watch(f)
                y, _ = layer(f, f, m, 3, 1, rate=2)
                loss = tf.reduce_sum(y * y)
            return y, tape.gradient(loss, f)
        return run

    fwd = {"vectorised": forward(contextual_attention), "loop": forward(contextual_attention_loop)}
    fb = {"vectorised": forward_backward(contextual_attention),
          "loop": forward_backward(contextual_attention_loop)}
    yv, ov = fwd["vectorised"](f, masks)
    yl, ol = fwd["loop"](f, masks)
    diff = float(tf.reduce_max(tf.abs(yv - yl)))
    scale = float(tf.reduce_max(tf.abs(yl)))
    same_offsets = float(tf.reduce_mean(tf.cast(tf.reduce_all(ov == ol, axis=-1), tf.float32)))
    _, gv = fb["vectorised"](f, masks)
    _, gl = fb["loop"](f, masks)
    gdiff = float(tf.reduce_max(tf.abs(gv - gl))) / (float(tf.reduce_max(tf.abs(gl))) + 1e-30)
    print(f"outputs: max |vectorised - loop| = {diff:.2e} (max |y| = {scale:.2f}); "
          f"gradients: max relative difference {gdiff:.2e}; "
          f"argmax offsets equal at {same_offsets:.1%} of positions")

    times = {}
    for kind, fns in (("forward", fwd), ("forward+backward", fb)):
        for name, fn in fns.items():
            _common.block(fn(f, masks))
        timers = {name: _common.Timer() for name in fns}
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            for name, fn in fns.items():
                _common.block(timers[name].run(fn, f, masks))
        for name, t in timers.items():
            times[(kind, name)] = t
            print(f"{kind:17s} {name:10s} {t.median_wall * 1e3:8.1f} ms wall "
                  f"({t.median_cpu * 1e3:.1f} ms CPU/cores)")
    print(f"machine after: {_common.machine_description()}")
    for kind, key in (("forward", "attention_speedup"), ("forward+backward", "attention_speedup_fwd_bwd")):
        v, l = times[(kind, "vectorised")], times[(kind, "loop")]
        # Median of the per-round ratios: the two runs of a round see the same machine.
        ratio = statistics.median(a / b for a, b in zip(l.wall, v.wall))
        ratio_cpu = statistics.median(a / b for a, b in zip(l.cpu, v.cpu))
        print(f"{kind}: vectorised is {ratio:.2f}x the loop (median of per-round ratios; "
              f"by CPU time {ratio_cpu:.2f}x)")
        _common.result(key, ratio)
    _common.result("attention_ms_vectorised", times[("forward", "vectorised")].median_wall * 1e3)
    _common.result("attention_ms_loop", times[("forward", "loop")].median_wall * 1e3)
    _common.result("attention_max_abs_diff", diff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
