"""Shared helpers of the benchmarks: environment, timing, peak, FLOP counts, RESULT lines.

Import this module *before* TensorFlow (``configure_env`` sets variables TF
reads at start-up).
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def configure_env(onednn: bool | None = True) -> None:
    """Sets TensorFlow's start-up variables (call before importing it).

    oneDNN is off by default in TF on CPUs without AVX-512 (as this Zen 3 EPYC);
    ``train.py`` turns it on, so the benchmarks do too unless told otherwise.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    if onednn is not None:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"


def machine_description() -> str:
    """CPU model, core count and load, for the report."""
    cpu = platform.processor() or "cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return (f"{cpu}, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
            f"{load[2]:.2f}, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '(unset)')}")


class Timer:
    """Wall and CPU time of a callable; CPU time / cores is robust to other load."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self, fn, *args):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        self.wall.append(time.perf_counter() - t0)
        self.cpu.append((time.process_time() - c0) / (os.cpu_count() or 1))
        return out

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def block(x):
    """Waits for a (nested) TF result by reading it back."""
    import tensorflow as tf

    for t in tf.nest.flatten(x):
        if hasattr(t, "numpy"):
            t.numpy()
    return x


@functools.lru_cache(maxsize=None)
def _peak_kernels(n: int):
    """The peak's two compiled kernels and their inputs, made once per process."""
    import tensorflow as tf

    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    x, k = tf.random.normal([13, 64, 64, 128]), tf.random.normal([3, 3, 128, 128])
    matmul = tf.function(lambda a, b: tf.matmul(a, b))
    conv = tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"))
    return matmul, conv, (a, b), (x, k)


def measure_peak(repeats: int = 5) -> dict:
    """The machine's practical FP32 peak: a large matmul and a large conv in TF.

    Returns GFLOP/s by wall time and by CPU time / cores, each the best of
    the two kernels (median over ``repeats`` after a warm-up).
    """
    n = 4096
    matmul, conv, (a, b), (x, k) = _peak_kernels(n)
    out = {}
    for name, fn, args, flops in (("matmul", matmul, (a, b), 2 * n ** 3),
                                  ("conv", conv, (x, k), 2 * 13 * 64 * 64 * 9 * 128 * 128)):
        block(fn(*args))
        t = Timer()
        for _ in range(repeats):
            block(t.run(fn, *args))
        out[name] = (flops / t.median_wall / 1e9, flops / t.median_cpu / 1e9)
    return {"wall": max(v[0] for v in out.values()), "cpu": max(v[1] for v in out.values()),
            "detail": out}


def forward_flops(fn, *specs) -> float:
    """FLOPs of one call of ``fn`` traced with ``specs`` (TF's graph profiler)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    graph = tf.function(fn).get_concrete_function(*specs).graph
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the TF1 profiler's deprecation notices
    try:
        return float(model_analyzer.profile(graph, options=opts).total_float_ops)
    finally:
        logger.setLevel(level)


def result(name: str, value) -> None:
    """Prints one machine-readable headline figure."""
    if isinstance(value, float):
        value = f"{value:.4g}"
    print(f"RESULT {name} {value}", flush=True)
