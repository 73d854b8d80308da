"""Benchmark 1: one training iteration at the reference configuration.

One iteration = D_STEPS (5) critic steps + one generator/extractor step at
batch 13, 128x128 (setting.yml). Prints seconds per iteration split into the
critic and generator steps, the achieved GFLOP/s (model FLOPs of the
reference formulation, see below) and its ratio to the machine's FP32 peak
measured in the same run (a large matmul and a large conv, best of the two).

Run: ``python bench/bench_train.py`` (about 5 minutes on 2 idle cores).
Options compare variants in one process: ``--modes fp32,bf16,xla,reference``
(``reference`` = the plain formulations of the dilated/upsampling convs,
``bf16``/``fp16`` = mixed precision, ``xla`` = jit_compile). ``--onednn 0``
turns off oneDNN (the TF default on this CPU) for the whole run.

FLOP count ("model FLOPs", per iteration, B = batch): with G, C and E the
forward FLOPs per sample of the generator, both critics and the extractor
(TF's graph profiler on the plain formulation: 11.73, 1.41 and 0.34 GFLOP
at 128x128), a backward pass costing twice its forward, and the gradient
penalty costing 4 critic forwards (forward, input gradient, and the two
products of its backward):
  critic step    = G + 2C (real+fake) + 2*2C (backward) + 4C (penalty)  = G + 10C
  generator step = 3 * 2G (two generator passes, forward + backward)
                 + 2C (critics on the fake, forward + input gradient) + 3 * 2E
  iteration      = B * (5 * (G + 10C) + 6G + 2C + 6E) = B * (11G + 52C + 6E)
which is 2.66 TFLOP at the reference size. The fast paths skip part of this
work exactly (e.g. the generator forward is 10.06 GFLOP as run), which shows
up as a higher achieved rate, as it should: the rate is work-normalised time.

Timings are wall-clock medians over ``--iters`` iterations after
``--warmup``; each figure is also given by CPU time / cores, which other
processes on a shared machine disturb much less.
"""

from __future__ import annotations

import argparse
import sys

import _common


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default=None, help="config preset (default: setting.yml = reference)")
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--iters", type=int, default=3, help="timed iterations per mode")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations after tracing")
    p.add_argument("--modes", default="fp32",
                   help="comma-separated: fp32, bf16, fp16, xla, reference (default fp32)")
    p.add_argument("--no_split", action="store_true",
                   help="skip the separate timing of critic and generator steps")
    p.add_argument("--onednn", type=int, default=1, choices=(0, 1))
    p.add_argument("--inter_op_threads", type=int, default=None)
    p.add_argument("--intra_op_threads", type=int, default=None)
    return p.parse_args(argv)


def synthetic_batch(config, k, seed=0):
    """One training element with box holes (data loading is benchmark 4)."""
    import numpy as np
    import tensorflow as tf

    from piigan_tf.data.noise import training_noise

    rng = np.random.default_rng(seed)
    b = config.BATCH_SIZE
    h, w = config.img_hw
    bh, bw = config.box_hw
    images = rng.uniform(-1, 1, (k, b, h, w, 3)).astype("float32")
    masks = np.zeros((k, b, h, w, 1), "float32")
    top, left = (h - bh) // 2, (w - bw) // 2
    masks[:, :, top + 2:top + bh - 2, left + 2:left + bw - 2] = 1
    boxes = np.tile(np.array([top, left, bh, bw], "int32"), (k, b, 1))
    data = {"images": tf.constant(images), "masks": tf.constant(masks), "boxes": tf.constant(boxes)}
    data.update(training_noise(tf.constant(0, tf.int64), k, b, (h, w), (bh, bw), seed))
    return data


def model_flops(config) -> float:
    """Model FLOPs of one iteration (see the module docstring)."""
    import tensorflow as tf

    from piigan_tf.layers.fast_conv import fast_paths
    from piigan_tf.model import PiiGAN

    h, w = config.img_hw
    bh, bw = config.box_hw
    m = PiiGAN.from_config_object(config)
    m.build()
    s = tf.TensorSpec
    with fast_paths(False):
        g = _common.forward_flops(lambda x, mk, z: m.generator((x, mk, z)), s([1, h, w, 3]),
                                  s([1, h, w, 1]), s([1, h, w, 1]))
    c = (_common.forward_flops(m.local_critic, s([1, bh, bw, 3]))
         + _common.forward_flops(m.global_critic, s([1, h, w, 3])))
    e = _common.forward_flops(m.extractor, s([1, bh, bw, 3]))
    d = config.D_STEPS
    return config.BATCH_SIZE * (d * (g + 10 * c) + 6 * g + 2 * c + 6 * e)


def run_mode(mode, config, args):
    import keras
    import tensorflow as tf

    from piigan_tf.distribute import dtype_policy
    from piigan_tf.layers.fast_conv import set_fast_paths
    from piigan_tf.model import PiiGAN, default_optimizer

    compute = {"bf16": "bfloat16", "fp16": "float16"}.get(mode)
    set_fast_paths(mode != "reference")
    with dtype_policy(compute):
        model = PiiGAN.from_config_object(config)
        opts = [default_optimizer(n) for n in ("g_optimizer", "d_optimizer")]
        if compute == "float16":
            opts = [keras.optimizers.LossScaleOptimizer(o) for o in opts]
        model.compile(g_optimizer=opts[0], d_optimizer=opts[1])
    k = config.D_STEPS + 1
    data = synthetic_batch(config, k)
    jit = mode == "xla"
    step = tf.function(model.train_step, jit_compile=jit or None)
    t = _common.Timer()
    block(t.run(step, data))
    trace_s = t.wall[0]
    for _ in range(args.warmup):
        block(step(data))
    t = _common.Timer()
    for _ in range(args.iters):
        block(t.run(step, data))
    out = {"iter_wall": t.median_wall, "iter_cpu": t.median_cpu, "trace_s": trace_s,
           "iter_all": t.wall}
    if not args.no_split:
        i = 0
        critic = tf.function(lambda d: model.critic_step(
            d["images"][i], d["masks"][i], d["boxes"][i], d["z"][i], d["alpha"][i]),
            jit_compile=jit or None)
        gen = tf.function(lambda d: model.generator_step(
            d["images"][-1], d["masks"][-1], d["boxes"][-1], d["z"][-1], d["eps"]),
            jit_compile=jit or None)
        block(critic(data))
        block(gen(data))
        tc, tg = _common.Timer(), _common.Timer()
        for _ in range(args.iters):
            block(tc.run(critic, data))
            block(tg.run(gen, data))
        out.update(critic_wall=tc.median_wall * config.D_STEPS, critic_cpu=tc.median_cpu * config.D_STEPS,
                   gen_wall=tg.median_wall, gen_cpu=tg.median_cpu)
    set_fast_paths(True)
    return out


def block(x):
    return _common.block(x)


def main(argv=None) -> int:
    args = parse_args(argv)
    _common.configure_env(onednn=bool(args.onednn))
    import tensorflow as tf

    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    from piigan_tf.config import load_config

    overrides = {"BATCH_SIZE": args.batch_size} if args.batch_size else {}
    config = load_config(preset=args.preset, overrides=overrides)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(f"machine: {_common.machine_description()}")
    print(f"config: {config.img_hw[0]}x{config.img_hw[1]}, box {config.box_hw}, batch "
          f"{config.BATCH_SIZE}, {config.D_STEPS} critic steps + 1 generator step per iteration")
    # The peak first: TF's graph profiler (used by model_flops) leaves the
    # next kernels of the process running on one thread for a while.
    peak_before = _common.measure_peak()
    flops = model_flops(config)
    print(f"model FLOPs per iteration: {flops / 1e12:.3f} TFLOP")
    print(f"peak before: {peak_before['wall']:.0f} GFLOP/s wall, {peak_before['cpu']:.0f} by CPU time "
          f"(matmul {peak_before['detail']['matmul'][0]:.0f}, conv {peak_before['detail']['conv'][0]:.0f})")
    results = {}
    for mode in modes:
        r = run_mode(mode, config, args)
        results[mode] = r
        line = (f"[{mode}] iteration {r['iter_wall']:.2f} s wall (runs: "
                + ", ".join(f"{v:.2f}" for v in r["iter_all"])
                + f"), {r['iter_cpu']:.2f} s CPU/cores; first call (trace) {r['trace_s']:.1f} s")
        print(line, flush=True)
        if "critic_wall" in r:
            print(f"[{mode}]   {config.D_STEPS} critic steps {r['critic_wall']:.2f} s wall "
                  f"({r['critic_cpu']:.2f} CPU), generator step {r['gen_wall']:.2f} s wall "
                  f"({r['gen_cpu']:.2f} CPU)", flush=True)
    peak_after = _common.measure_peak()
    print(f"peak after: {peak_after['wall']:.0f} GFLOP/s wall, {peak_after['cpu']:.0f} by CPU time")
    peak_wall = max(peak_before["wall"], peak_after["wall"])
    peak_cpu = max(peak_before["cpu"], peak_after["cpu"])
    print(f"machine after: {_common.machine_description()}")
    for mode, r in results.items():
        suffix = "" if mode == "fp32" else f"_{mode}"
        gfl = flops / r["iter_wall"] / 1e9
        gfl_cpu = flops / r["iter_cpu"] / 1e9
        print(f"[{mode}] {gfl:.0f} GFLOP/s = {gfl / peak_wall:.2f} of peak {peak_wall:.0f} "
              f"(by CPU time: {gfl_cpu:.0f} = {gfl_cpu / peak_cpu:.2f} of {peak_cpu:.0f})")
        _common.result(f"train_s_per_iter{suffix}", r["iter_wall"])
        if "critic_wall" in r:
            _common.result(f"train_critic_s_per_iter{suffix}", r["critic_wall"])
            _common.result(f"train_generator_s_per_iter{suffix}", r["gen_wall"])
        _common.result(f"train_gflops{suffix}", gfl)
        _common.result(f"train_peak_fraction{suffix}", gfl / peak_wall)
        _common.result(f"train_peak_fraction_cpu{suffix}", gfl_cpu / peak_cpu)
    if "fp32" in results:
        for mode in results:
            if mode != "fp32":
                _common.result(f"train_speedup_{mode}_vs_fp32",
                               results["fp32"]["iter_wall"] / results[mode]["iter_wall"])
                _common.result(f"train_speedup_{mode}_vs_fp32_cpu",
                               results["fp32"]["iter_cpu"] / results[mode]["iter_cpu"])
    _common.result("peak_gflops", peak_wall)
    _common.result("peak_gflops_cpu", peak_cpu)
    _common.result("model_tflop_per_iter", flops / 1e12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
