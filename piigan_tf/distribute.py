"""Multi-device training and mixed precision: strategies, dtype policies, batch layout.

``Trainer(strategy=make_strategy("mirrored"), mixed_precision="auto")`` is what
``train.py --strategy mirrored --mixed_precision`` runs.

Distribution. A training element holds the D_STEPS + 1 batches of one
iteration stacked on a leading axis ([K, B, ...]). ``tf.distribute`` splits
elements along their *first* axis, so the Trainer hands it the transposed
(batch-major, [B, K, ...]) element and each replica transposes its share
back. Replica r thus gets samples r*B/n .. (r+1)*B/n - 1 of every batch of the
global element, noise included (see ``piigan_tf.data.noise``), and
``PiiGAN.train_step`` reduces its losses over the global batch: the step
equals the single-device step on the same data (tested in
``tests/test_distributed.py``).
"""

from __future__ import annotations

import contextlib
import logging

import keras
import tensorflow as tf

log = logging.getLogger("piigan_tf")

STRATEGIES = ("default", "mirrored", "multi_worker")
MIXED_PRECISION = ("auto", "bfloat16", "float16")


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy by name.

    Args:
        name: ``default`` (one device), ``mirrored`` (all local GPUs, or the
            CPU when there are none) or ``multi_worker`` (several machines;
            each reads the cluster from the ``TF_CONFIG`` environment variable).

    Raises:
        ValueError: an unknown name.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


class MixedPrecisionUnavailable(ValueError):
    """This TensorFlow cannot train in the requested 16-bit dtype on this machine."""


def resolve_mixed_precision(mode: str | None) -> str | None:
    """The compute dtype for a ``--mixed_precision`` value, checked by a probe.

    ``auto`` is bfloat16 on CPU and float16 on GPU (loss-scaled); None or
    ``"none"`` is float32. On CPU what the running TensorFlow can do decides
    (``fast_conv.conv_gradient_error`` runs a tiny conv gradient in that
    dtype), not the CPU's name: with dilated conv gradients the generator's
    dilated convs run natively; without them (TF's own CPU kernels, e.g.
    bfloat16 on CPUs without AVX-512, where oneDNN does not take it) they run
    as ordinary convs on the map's phases, the same sum; without even plain
    conv gradients training cannot run in that dtype.

    Raises:
        ValueError: an unknown mode.
        MixedPrecisionUnavailable: no conv gradient in that dtype here; the
            message is one line saying so and what to use instead.
    """
    if mode in (None, "", "none", "float32"):
        return None
    if mode not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}; "
                         f"got {mode!r}")
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if mode == "auto":
        mode = "float16" if gpu else "bfloat16"
    if gpu:
        return mode
    from piigan_tf.layers.fast_conv import conv_gradient_error

    error = conv_gradient_error(mode, dilation=1)
    if error is not None:
        raise MixedPrecisionUnavailable(
            f"--mixed_precision {mode}: this TensorFlow cannot back-propagate {mode} "
            f"convolutions on this CPU ({error}); train in float32 (leave out "
            "--mixed_precision)")
    dilated = conv_gradient_error(mode, dilation=2)
    if dilated is not None:
        log.info("no dilated %s conv gradient in this TensorFlow (%s): the dilated convs "
                 "run as ordinary convs on the map's phases (the same sum)", mode, dilated)
    if not cpu_has_bfloat16():
        log.warning(
            "mixed precision %s on a CPU without bfloat16/float16 arithmetic (no AVX512_BF16 "
            "or AMX): TensorFlow emulates it and training runs several times slower than "
            "float32 (see docs/performance.md)", mode)
    return mode


def cpu_has_bfloat16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (AVX512_BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def dtype_policy(compute_dtype: str | None):
    """Builds layers under ``mixed_<compute_dtype>`` (float32 variables), then restores.

    Layers keep the policy they were created with, so only the model built
    inside the block is affected.
    """
    old = keras.config.dtype_policy()
    if compute_dtype is not None:
        keras.config.set_dtype_policy(f"mixed_{compute_dtype}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def to_batch_major(element: dict) -> dict:
    """[K, B, ...] -> [B, K, ...] for the grouped keys; ``eps`` is already [B, ...]."""
    out = {}
    for name, value in element.items():
        if name == "eps":
            out[name] = value
        else:
            perm = [1, 0] + list(range(2, value.shape.rank))
            out[name] = tf.transpose(value, perm)
    return out


def from_batch_major(element: dict) -> dict:
    """Inverse of ``to_batch_major`` (the same transposition)."""
    return to_batch_major(element)
