"""Runs every benchmark, collects their ``RESULT`` lines and checks the targets.

Run: ``python bench/run_all.py [--quick] [--json results.json]``. Each
benchmark runs in its own process (so each starts from a clean TensorFlow),
its output is echoed, and a summary table with the targets follows. About
20 minutes on 2 CPU cores (``--quick``: fewer repeats, ~10 minutes).
Timings depend on what else runs on the machine: the scripts print the load
average before and after, and also give CPU-time-based figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (result name, comparison, threshold, what it checks)
TARGETS = [
    ("train_peak_fraction", ">=", 0.85, "FP32 iteration vs the peak measured in the same run"),
    ("train_speedup_bf16_vs_fp32", ">=", 1.6, "--mixed_precision (bfloat16 on CPU) vs FP32"),
    ("attention_speedup", ">=", 3.0, "vectorised contextual attention vs per-sample loop"),
    ("sampling_speedup", ">=", 1.3, "10 samples batched vs one run per sample"),
    ("pipeline_ratio", ">=", 10.0, "input pipeline vs training consumption"),
    ("sample_dataset_build_s", "<=", 15.0, "building the embedded sample set offline (s)"),
]


def run(script: str, args: list[str]) -> dict:
    path = HERE / script
    if not path.exists():
        print(f"--- {script}: not present, skipped", flush=True)
        return {}
    print(f"--- {script} {' '.join(args)}", flush=True)
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(path), *args], cwd=HERE.parent, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                               # as train.py: oneDNN on unless the caller says otherwise
                               "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1")})
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith(("WARNING: All log", "I0000", "E0000", "W0000")):
            continue
        print(line, flush=True)
        if line.startswith("RESULT "):
            _, name, value = line.split(maxsplit=2)
            try:
                results[name] = float(value)
            except ValueError:
                results[name] = value
    print(f"--- {script}: exit {proc.returncode}, {time.time() - t0:.0f} s", flush=True)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--json", default=None, help="also write the results to this file")
    p.add_argument("--skip_mixed", action="store_true",
                   help="skip the bfloat16 runs (slow on CPUs without bfloat16 arithmetic)")
    args = p.parse_args(argv)
    iters = ["--iters", "3" if args.quick else "5"]
    results: dict = {}
    modes = "fp32" if args.skip_mixed else "fp32,bf16"
    if not args.quick:
        modes += ",reference"  # the plain formulations, to show what the fast paths buy
    results.update(run("bench_train.py", [*iters, "--modes", modes]
                       + (["--no_split"] if args.quick else [])))
    results.update(run("bench_convs.py", ["--repeats", "3" if args.quick else "7"]))
    results.update(run("bench_attention.py", ["--repeats", "7" if args.quick else "15"]))
    results.update(run("bench_sampling.py", []))
    pipe = ["--elements", "10" if args.quick else "20"]
    if "train_s_per_iter" in results:
        pipe += ["--train_s_per_iter", str(results["train_s_per_iter"])]
    results.update(run("bench_pipeline.py", pipe))
    results.update(run("bench_memory.py", []))
    if not args.skip_mixed:
        results.update(run("bench_mixed_precision.py",
                           ["--preset", "quick", "--steps", "20" if args.quick else "40"]))

    print("\n=== summary ===")
    for name, value in sorted(results.items()):
        print(f"RESULT {name} {value}")
    print("\n=== targets ===")
    for name, op, threshold, what in TARGETS:
        if name not in results and name == "sampling_speedup":  # named by its own script
            name = next((k for k in results if "sampling" in k and "speedup" in k), name)
        value = results.get(name)
        if value is None:
            status = "not measured"
        else:
            met = value >= threshold if op == ">=" else value <= threshold
            status = f"{value:.3g} {'MET' if met else 'NOT MET'}"
        print(f"{what:55s} target {op} {threshold:<5} {status}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
