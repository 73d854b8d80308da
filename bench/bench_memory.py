"""Benchmark 5: peak memory of a training run.

Runs ``Trainer.fit`` (input pipeline, model, both optimizers, summaries and the
final checkpoint) for a few iterations in a fresh process and reports its
peak resident set size, next to the RSS once the model and optimizers are
built (before the first step) and the size of the variables themselves
(weights + Adam's two moments). On a GPU the device's peak memory
(``tf.config.experimental.get_memory_info``) is reported as well.

Run: ``python bench/bench_memory.py [--iters 2] [--mixed_precision bfloat16]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import _common

CHILD = r"""
import json, resource, sys
sys.path.insert(0, {bench!r})
import _common
_common.configure_env(onednn={onednn})
import tensorflow as tf
from piigan_tf.config import load_config
from piigan_tf.training import Trainer

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

overrides = {{"DATASET": {dataset!r}, "MAX_ITERS": {iters}, "TRAIN_SPE": 10 ** 6,
              "VAL_PSTEPS": 10 ** 6}}
config = load_config(preset={preset!r}, overrides=overrides)
trainer = Trainer(config, checkpoint_dir={out!r} + "/ckpt", log_dir={out!r} + "/logs",
                  resume=False, mixed_precision={mixed!r})
model = trainer.model
variables = list(model.weights) + list(model.g_optimizer.variables) + list(model.d_optimizer.variables)
state_mb = sum(v.numpy().nbytes for v in variables) / 2 ** 20
built_mb = rss_mb()
trainer.fit(max_iters={iters}, progress=False)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
gpu = None
if tf.config.list_physical_devices("GPU"):
    gpu = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20
print("MEMORY_JSON " + json.dumps({{"state_mb": state_mb, "built_mb": built_mb,
                                    "peak_mb": peak_mb, "gpu_peak_mb": gpu,
                                    "params": int(model.count_params())}}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default=None, help="default: CelebA if present, else sample")
    p.add_argument("--preset", default=None)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--mixed_precision", default=None)
    p.add_argument("--onednn", type=int, default=1, choices=(0, 1))
    args = p.parse_args(argv)
    _common.configure_env(onednn=bool(args.onednn))
    from bench_pipeline import DEFAULT_DATASETS

    dataset = args.dataset
    if dataset is None:
        dataset = next((d for d in DEFAULT_DATASETS if d == "sample"
                        or os.path.exists(_common.ROOT / d)), "sample")
    print(f"machine: {_common.machine_description()}")
    with tempfile.TemporaryDirectory(prefix="piigan_mem_") as out:
        code = CHILD.format(bench=str(_common.ROOT / "bench"), onednn=bool(args.onednn),
                            dataset=dataset, iters=args.iters, preset=args.preset, out=out,
                            mixed=args.mixed_precision)
        proc = subprocess.run([sys.executable, "-c", code], cwd=_common.ROOT,
                              capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("MEMORY_JSON ")]
    if proc.returncode != 0 or not lines:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        return 1
    r = json.loads(lines[-1][len("MEMORY_JSON "):])
    print(f"dataset {dataset}, {args.iters} iterations"
          + (f", mixed precision {args.mixed_precision}" if args.mixed_precision else ""))
    print(f"{r['params']:,} parameters; weights + Adam moments = {r['state_mb']:.0f} MB")
    print(f"RSS with model and optimizers built: {r['built_mb']:.0f} MB; peak RSS of the run: "
          f"{r['peak_mb']:.0f} MB (so {r['peak_mb'] - r['built_mb']:.0f} MB for activations, "
          f"gradients, pipeline and checkpointing)")
    suffix = f"_{args.mixed_precision}" if args.mixed_precision else ""
    _common.result(f"train_peak_rss_mb{suffix}", r["peak_mb"])
    _common.result(f"train_state_mb{suffix}", r["state_mb"])
    if r["gpu_peak_mb"] is not None:
        _common.result(f"train_gpu_peak_mb{suffix}", r["gpu_peak_mb"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
