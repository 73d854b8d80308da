"""Benchmark 1: one training iteration at the reference configuration.

One iteration = D_STEPS (5) critic steps + one generator/extractor step at
batch 13, 128x128 (setting.yml). Prints seconds per iteration split into the
critic and generator steps, the achieved GFLOP/s (model FLOPs of the
reference formulation, see below) and its ratio to the machine's FP32 peak
measured in the same run (a large matmul and a large conv, best of the two).

Run: ``python bench/bench_train.py`` (about 5 minutes on 2 idle cores).
Options compare variants in one process: ``--modes fp32,bf16,xla,reference``
(``reference`` = the plain formulations of the dilated/upsampling convs,
``bf16``/``fp16`` = mixed precision, ``xla`` = jit_compile). Every mode is
built by ``piigan_tf.builders.build_piigan`` and timed through Keras' train
function, what ``train.py`` runs. ``--onednn 0`` turns off oneDNN (the TF
default on this CPU) for the whole run.

FLOP count ("model FLOPs", per iteration, B = batch): with G, C and E the
forward FLOPs per sample of the generator, both critics and the extractor
(TF's graph profiler on the reference formulation -- plain convs, the
attention in the reference's per-sample structure: 11.73, 1.41 and 0.34
GFLOP at 128x128), a backward pass costing twice its forward, and the gradient
penalty costing 4 critic forwards (forward, input gradient, and the two
products of its backward):
  critic step    = G + 2C (real+fake) + 2*2C (backward) + 4C (penalty)  = G + 10C
  generator step = 3 * 2G (two generator passes, forward + backward)
                 + 2C (critics on the fake, forward + input gradient) + 3 * 2E
  iteration      = B * (5 * (G + 10C) + 6G + 2C + 6E) = B * (11G + 52C + 6E)
which is 2.66 TFLOP at the reference size. The fast paths skip part of this
work exactly (e.g. the generator forward is 10.06 GFLOP as run), which shows
up as a higher achieved rate, as it should: the rate is work-normalised time.

Timing runs in rounds after ``--warmup``: each round measures the peak
(matmul and conv, best of the two) and then one iteration, for every mode in
turn. The peak fraction is the median over rounds of iteration rate / the
peak measured just before it, and a speedup is the median over rounds of
the first mode's time / this mode's: both ratios compare runs made under the
same conditions, which matters on a shared machine whose speed drifts by
10 % within minutes. Each figure is also given by CPU time / cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import _common


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default=None, help="config preset (default: setting.yml = reference)")
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--iters", type=int, default=5, help="timed rounds (one iteration per mode each)")
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


def forward_flops_per_sample(config) -> dict:
    """Forward FLOPs of one sample through each network, reference formulation.

    Returns ``{"generator": G, "critics": C, "extractor": E}`` (local + global
    critic in C), counted by TF's graph profiler with the plain dilated and
    upsampling convs and the attention in the reference's structure (conv2d
    matching, transposed-conv pasting: 0.42 GFLOP per sample at 128x128) --
    not the vectorised layer the model runs, whose Gram-matrix matching and
    block-grid paste do a quarter of that work.
    """
    from unittest import mock

    import tensorflow as tf

    from piigan_tf.layers.attention import contextual_attention_loop
    from piigan_tf.model import PiiGAN
    from piigan_tf.networks import generator as generator_module

    h, w = config.img_hw
    bh, bw = config.box_hw
    m = PiiGAN.from_config_object(config, fast_paths=False)  # the plain formulations
    m.build()
    s = tf.TensorSpec
    with mock.patch.object(generator_module, "contextual_attention", contextual_attention_loop):
        g = _common.forward_flops(lambda x, mk, z: m.generator((x, mk, z)), s([1, h, w, 3]),
                                  s([1, h, w, 1]), s([1, h, w, 1]))
    c = (_common.forward_flops(m.local_critic, s([1, bh, bw, 3]))
         + _common.forward_flops(m.global_critic, s([1, h, w, 3])))
    e = _common.forward_flops(m.extractor, s([1, bh, bw, 3]))
    return {"generator": g, "critics": c, "extractor": e}


def model_flops(config) -> float:
    """Model FLOPs of one iteration (see the module docstring)."""
    f = forward_flops_per_sample(config)
    g, c, e = f["generator"], f["critics"], f["extractor"]
    d = config.D_STEPS
    return config.BATCH_SIZE * (d * (g + 10 * c) + 6 * g + 2 * c + 6 * e)


def build_mode(mode, config, data, args):
    """Builds, traces and warms up the train step of one mode; returns its runners.

    The model comes from ``piigan_tf.builders.build_piigan`` and the step is
    Keras' train function, as ``model.fit`` in ``train.py`` runs it (the
    batch repeats from a tf.data iterator; data loading is benchmark 4).
    """
    import tensorflow as tf

    from piigan_tf.builders import build_piigan

    compute = {"bf16": "bfloat16", "fp16": "float16"}.get(mode)
    jit = mode == "xla"
    model = build_piigan(config, compute, jit_compile=jit, fast_paths=mode != "reference")
    model.make_train_function()
    batches = iter(tf.data.Dataset.from_tensors(data).repeat())

    def step(_):
        return model.train_function(batches)

    t = _common.Timer()
    block(t.run(step, data))
    runners = {"step": step, "trace_s": t.wall[0]}
    for _ in range(args.warmup):
        block(step(data))
    if not args.no_split:
        runners["critic"] = tf.function(lambda d: model.critic_step(
            d["images"][0], d["masks"][0], d["boxes"][0], d["z"][0], d["alpha"][0]),
            jit_compile=jit or None)
        runners["gen"] = tf.function(lambda d: model.generator_step(
            d["images"][-1], d["masks"][-1], d["boxes"][-1], d["z"][-1], d["eps"]),
            jit_compile=jit or None)
        block(runners["critic"](data))
        block(runners["gen"](data))
    return runners


def time_modes(modes, runners, data, flops, config, args):
    """Timed rounds, each running every mode once right after measuring the peak.

    Interleaving makes each mode-to-mode ratio and each iteration-to-peak
    ratio a comparison under the same machine conditions (a shared machine
    drifts by 10 % over minutes); the figures are medians over the rounds.
    """
    import statistics

    out = {m: {"iter_all": [], "cpu_all": [], "fraction": [], "fraction_cpu": []} for m in modes}
    peaks = []
    for _ in range(args.iters):
        for mode in modes:
            peak = _common.measure_peak(repeats=2)
            peaks.append(peak)
            t = _common.Timer()
            block(t.run(runners[mode]["step"], data))
            r = out[mode]
            r["iter_all"].append(t.wall[0])
            r["cpu_all"].append(t.cpu[0])
            r["fraction"].append(flops / t.wall[0] / 1e9 / peak["wall"])
            r["fraction_cpu"].append(flops / t.cpu[0] / 1e9 / peak["cpu"])
    for mode in modes:
        r = out[mode]
        r.update(iter_wall=statistics.median(r["iter_all"]), iter_cpu=statistics.median(r["cpu_all"]),
                 trace_s=runners[mode]["trace_s"])
        if mode != modes[0]:
            base = out[modes[0]]
            r["speedup"] = statistics.median(
                a / b for a, b in zip(base["iter_all"], r["iter_all"]))
            r["speedup_cpu"] = statistics.median(
                a / b for a, b in zip(base["cpu_all"], r["cpu_all"]))
        if "critic" in runners[mode]:
            tc, tg = _common.Timer(), _common.Timer()
            for _ in range(args.iters):
                block(tc.run(runners[mode]["critic"], data))
                block(tg.run(runners[mode]["gen"], data))
            r.update(critic_wall=tc.median_wall * config.D_STEPS,
                     critic_cpu=tc.median_cpu * config.D_STEPS,
                     gen_wall=tg.median_wall, gen_cpu=tg.median_cpu)
    return out, peaks


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
    data = synthetic_batch(config, config.D_STEPS + 1)
    runners = {mode: build_mode(mode, config, data, args) for mode in modes}
    results, peaks = time_modes(modes, runners, data, flops, config, args)
    for mode, r in results.items():
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
    in_run = [p["wall"] for p in peaks]
    print(f"peak next to each timed iteration: {min(in_run):.0f}..{max(in_run):.0f} GFLOP/s "
          f"(median {statistics.median(in_run):.0f})")
    peak_wall = statistics.median(in_run + [peak_before["wall"], peak_after["wall"]])
    peak_cpu = statistics.median([p["cpu"] for p in peaks] + [peak_before["cpu"], peak_after["cpu"]])
    print(f"machine after: {_common.machine_description()}")
    for mode, r in results.items():
        suffix = "" if mode == "fp32" else f"_{mode}"
        gfl = flops / r["iter_wall"] / 1e9
        frac = statistics.median(r["fraction"])
        frac_cpu = statistics.median(r["fraction_cpu"])
        print(f"[{mode}] {gfl:.0f} GFLOP/s; per round, iteration vs the peak measured just "
              f"before it: {frac:.2f} (runs: " + ", ".join(f"{v:.2f}" for v in r["fraction"])
              + f"); by CPU time {frac_cpu:.2f}")
        _common.result(f"train_s_per_iter{suffix}", r["iter_wall"])
        if "critic_wall" in r:
            _common.result(f"train_critic_s_per_iter{suffix}", r["critic_wall"])
            _common.result(f"train_generator_s_per_iter{suffix}", r["gen_wall"])
        _common.result(f"train_gflops{suffix}", gfl)
        _common.result(f"train_peak_fraction{suffix}", frac)
        _common.result(f"train_peak_fraction_cpu{suffix}", frac_cpu)
        if "speedup" in r:
            base = modes[0]
            _common.result(f"train_speedup_{mode}_vs_{base}", r["speedup"])
            _common.result(f"train_speedup_{mode}_vs_{base}_cpu", r["speedup_cpu"])
    _common.result("peak_gflops", peak_wall)
    _common.result("peak_gflops_cpu", peak_cpu)
    _common.result("model_tflop_per_iter", flops / 1e12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
