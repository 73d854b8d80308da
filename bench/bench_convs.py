"""Diagnostic: GFLOP/s of each conv shape of the networks, forward and both gradients.

Where a training iteration loses time against the machine's peak is mostly
in the conv kernels themselves: this script times one conv op of every
distinct layer shape of the generator, the critics and the extractor at the
reference configuration (128x128, the batch each runs at in a training
step), as the three ops a training step runs for it: the forward conv, the
gradient with respect to its input (``Conv2DBackpropInput``) and with respect
to its kernel (``Conv2DBackpropFilter``). Each figure is FLOPs / median time,
next to the peak measured in the same run (``_common.measure_peak``).

Run: ``python bench/bench_convs.py [--repeats 7]`` (about 2 minutes).
Ends with ``RESULT conv_<direction>_fraction`` lines: the fraction of the
peak reached by each direction over all shapes, weighted by FLOPs (each
shape counted as often as it occurs in one pass of its network).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import _common

# name, input side, kernel, stride, in channels, out channels, batch, layers of
# this shape in one pass of the network. Batches as in a training step: the
# generator runs at 13, the critics at 26 (real + fake; the penalty runs them
# at 13 too). The upsampling convs (transposed convs on the small map) are
# left out.
SHAPES = [
    ("gen 5x5 128^2 6->32", 128, 5, 1, 6, 32, 13, 3),
    ("gen 3x3/2 128^2 32->64", 128, 3, 2, 32, 64, 13, 1),
    ("gen 3x3/2 128^2 32->32", 128, 3, 2, 32, 32, 13, 2),
    ("gen 3x3 64^2 64->64", 64, 3, 1, 64, 64, 13, 3),
    ("gen 3x3 64^2 32->64", 64, 3, 1, 32, 64, 13, 2),
    ("gen 3x3/2 64^2 64->128", 64, 3, 2, 64, 128, 13, 2),
    ("gen 3x3/2 64^2 64->64", 64, 3, 2, 64, 64, 13, 1),
    ("gen 3x3 32^2 128->128", 32, 3, 1, 128, 128, 13, 18),
    ("gen 3x3 32^2 64->128", 32, 3, 1, 64, 128, 13, 1),
    ("gen 3x3 32^2 256->128", 32, 3, 1, 256, 128, 13, 1),
    ("gen 3x3 128^2 32->16", 128, 3, 1, 32, 16, 13, 2),
    ("gen 3x3 128^2 16->3", 128, 3, 1, 16, 3, 13, 2),
    ("global 5x5/2 128^2 3->64", 128, 5, 2, 3, 64, 26, 1),
    ("global 5x5/2 64^2 64->128", 64, 5, 2, 64, 128, 26, 1),
    ("global 5x5/2 32^2 128->256", 32, 5, 2, 128, 256, 26, 1),
    ("global 5x5/2 16^2 256->256", 16, 5, 2, 256, 256, 26, 1),
    ("local 5x5/2 64^2 3->64", 64, 5, 2, 3, 64, 26, 1),
    ("local 5x5/2 32^2 64->128", 32, 5, 2, 64, 128, 26, 1),
    ("local 5x5/2 16^2 128->256", 16, 5, 2, 128, 256, 26, 1),
    ("local 5x5/2 8^2 256->512", 8, 5, 2, 256, 512, 26, 1),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--onednn", type=int, default=1, choices=(0, 1))
    args = p.parse_args(argv)
    _common.configure_env(onednn=bool(args.onednn))
    import tensorflow as tf

    print(f"machine: {_common.machine_description()}")
    peak = _common.measure_peak()["wall"]
    print(f"peak: {peak:.0f} GFLOP/s (large matmul/conv)")

    def timed(fn, *xs):
        _common.block(fn(*xs))
        t = _common.Timer()
        for _ in range(args.repeats):
            _common.block(t.run(fn, *xs))
        return t.median_wall

    weighted = {"fwd": [0.0, 0.0], "bwd_input": [0.0, 0.0], "bwd_kernel": [0.0, 0.0]}
    print(f"{'layer shape':28s} {'batch':>5s} {'GFLOP':>6s}  GFLOP/s (fraction of peak): "
          "forward, d input, d kernel")
    for name, hw, k, s, cin, cout, batch, count in SHAPES:
        ho = -(-hw // s)
        x = tf.random.normal([batch, hw, hw, cin])
        w = tf.random.normal([k, k, cin, cout])
        dy = tf.random.normal([batch, ho, ho, cout])
        strides = [1, s, s, 1]
        fwd = tf.function(lambda x, w: tf.nn.conv2d(x, w, s, "SAME"))
        bwd_in = tf.function(lambda w, dy: tf.raw_ops.Conv2DBackpropInput(
            input_sizes=[batch, hw, hw, cin], filter=w, out_backprop=dy, strides=strides,
            padding="SAME"))
        bwd_k = tf.function(lambda x, dy: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=[k, k, cin, cout], out_backprop=dy, strides=strides,
            padding="SAME"))
        flops = 2.0 * batch * ho * ho * k * k * cin * cout
        rates = {}
        for key, fn, xs in (("fwd", fwd, (x, w)), ("bwd_input", bwd_in, (w, dy)),
                            ("bwd_kernel", bwd_k, (x, dy))):
            t = timed(fn, *xs)
            rates[key] = flops / t / 1e9
            weighted[key][0] += count * flops
            weighted[key][1] += count * t
        print(f"{name:28s} {batch:5d} {flops / 1e9:6.2f} "
              + " ".join(f"{rates[key]:5.0f} ({rates[key] / peak:.2f})" for key in weighted),
              flush=True)
    print(f"machine after: {_common.machine_description()}")
    for key, (flops, seconds) in weighted.items():
        _common.result(f"conv_{key}_fraction", flops / seconds / 1e9 / peak)
    _common.result("conv_peak_gflops", peak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
