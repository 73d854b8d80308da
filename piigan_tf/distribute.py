"""Multi-device training and mixed precision: strategies, precision probes, batch layout.

``Trainer(strategy=make_strategy("mirrored"), mixed_precision="auto")`` is what
``train.py --strategy mirrored --mixed_precision`` runs.

Distribution. A training element holds the D_STEPS + 1 batches of one
iteration stacked on a leading axis ([K, B, ...]). ``tf.distribute`` splits
elements along their *first* axis, so the Trainer hands it the transposed
(batch-major, [B, K, ...]) element and ``PiiGAN.train_step`` transposes
each replica's share back. Replica r thus gets samples r*B/n .. (r+1)*B/n - 1
of every batch of the global element, noise included (see ``piigan_tf.data.noise``), and
``PiiGAN.train_step`` reduces its losses over the global batch: the step
equals the single-device step on the same data (tested in
``tests/test_distributed.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

log = logging.getLogger("piigan_tf")

STRATEGIES = ("default", "mirrored", "multi_worker")
MIXED_PRECISION = ("auto", "bfloat16", "float16")


def make_strategy(name: str = "default", num_gpus: int = 1) -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy by name.

    Args:
        name: ``default`` (one device), ``mirrored`` (all local GPUs, or the
            CPU when there are none) or ``multi_worker`` (several machines;
            each reads the cluster from the ``TF_CONFIG`` environment variable).
        num_gpus: the config's ``NUM_GPUS``. Above 1 it asks for a mirrored
            strategy over the first ``num_gpus`` GPUs (``default`` becomes
            ``mirrored``); it must then be at most the number of GPUs there are.

    Raises:
        ValueError: an unknown name, or a ``num_gpus`` that cannot be honoured.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    num_gpus = int(num_gpus)
    if num_gpus < 1:
        raise ValueError(f"NUM_GPUS must be at least 1; got {num_gpus}. Use --strategy to "
                         "choose how training is distributed.")
    if num_gpus > 1:
        if name == "multi_worker":
            raise ValueError(f"NUM_GPUS={num_gpus} does not combine with --strategy "
                             "multi_worker (each worker uses all its GPUs); set NUM_GPUS=1")
        found = len(tf.config.list_physical_devices("GPU"))
        if found < num_gpus:
            raise ValueError(f"NUM_GPUS={num_gpus} but TensorFlow sees {found} GPU(s) here; "
                             "set NUM_GPUS=1 (--set NUM_GPUS=1), or use --strategy mirrored "
                             "for all the GPUs there are")
        log.info("NUM_GPUS=%d: mirrored strategy over /gpu:0../gpu:%d", num_gpus, num_gpus - 1)
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(num_gpus)])
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in a (multi-worker) run.

    ``is_chief``: the one worker that writes the run folder (checkpoints,
    config.yml, TensorBoard events, losses.jsonl): the ``chief`` task if the
    cluster has one, else worker 0, as in TensorFlow's multi-worker guide.
    """

    task_type: str | None = None
    task_id: int = 0
    num_workers: int = 1
    is_chief: bool = True

    @property
    def name(self) -> str:
        return f"{self.task_type}:{self.task_id}" if self.task_type else "local"


def worker_role(strategy: tf.distribute.Strategy) -> WorkerRole:
    """The ``WorkerRole`` of this process under ``strategy`` (single process: the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return WorkerRole()
    spec = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    num_workers = sum(len(spec.get(job, [])) for job in ("chief", "worker"))
    if "chief" in spec:
        chief = task_type == "chief"
    else:
        chief = task_type == "worker" and task_id == 0
    return WorkerRole(task_type, task_id, max(num_workers, 1), chief)


class MultiWorkerError(RuntimeError):
    """A multi-worker run cannot go on (a lost worker, workers out of step)."""


class WorkerLostError(MultiWorkerError):
    """Another worker of a multi-worker run stopped answering; training stopped."""


# Errors a collective op raises when a peer has died or the cluster is shutting down.
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
               tf.errors.CancelledError, tf.errors.AbortedError)


def lost_task(error: BaseException, role: WorkerRole) -> str:
    """The task a peer error names (other than this one), e.g. ``worker:1``."""
    text = str(getattr(error, "message", None) or error)
    for job, task in re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text):
        if (job, int(task)) != (role.task_type, role.task_id):
            return f"{job}:{task}"
    m = re.search(r"task[ _:]*(?:/job:)?(\w+)[/:](?:replica:\d+/task:)?(\d+)", text)
    return f"{m.group(1)}:{m.group(2)}" if m else "another worker"


def _error_summary(error: BaseException) -> str:
    """The cause in a collective's error, without the graph traceback TF puts first."""
    lines = str(getattr(error, "message", None) or error).splitlines()
    kept = [line.strip() for line in lines if line.strip() and not line.startswith(" ")
            and not line.startswith(("Graph execution error", "Detected at node",
                                     "Additional GRPC error", ":UNKNOWN"))]
    text = " ".join(" ".join(kept).split()) or type(error).__name__
    return text[:200]


def scratch_dir(role: WorkerRole, kind: str) -> Path:
    """A fresh temporary folder for what a non-chief worker writes (removed after use).

    Named after this process; folders left by processes that no longer exist
    (a worker killed with SIGKILL cannot remove its own) are removed first.
    """
    root = Path(tempfile.gettempdir())
    for old in root.glob("piigan-worker-*"):
        m = re.fullmatch(r"piigan-worker-\w+-(\d+)-.*", old.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            shutil.rmtree(old, ignore_errors=True)
    name = f"piigan-worker-{role.task_type}{role.task_id}{kind}-{os.getpid()}-"
    return Path(tempfile.mkdtemp(prefix=name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def shard_by_batch(ds: tf.data.Dataset) -> tf.data.Dataset:
    """A global-batch stream, set up so that the workers split every batch.

    Every worker builds the same stream (same files, seed and order) of
    global batches; ``DATA`` sharding makes ``experimental_distribute_dataset``
    hand worker w its slice of each global batch (rather than FILE sharding,
    which would give each worker other files, and so other global batches
    than a single process with the global batch). The price: each worker
    decodes the whole global batch.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def save_worker_copy(checkpoint: tf.train.Checkpoint, role: WorkerRole, step: int) -> str:
    """A non-chief worker's part of a save: into a temporary folder, then deleted.

    Every worker must take part in a save (its variables may need collective
    ops to be read), but only the chief's copy is kept.
    """
    folder = scratch_dir(role, "ckpt")
    try:
        return tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1).save(
            checkpoint_number=step)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_same_step(strategy: tf.distribute.Strategy, step: int, role: WorkerRole,
                    checkpoint_dir) -> None:
    """Fails unless every worker resumed at the same step (from the chief's checkpoint).

    Raises:
        MultiWorkerError: the workers restored different steps: the checkpoint folder
            is not the chief's (not shared, or not copied to every worker).
    """
    values = tf.constant([1.0, float(step), float(step) ** 2], tf.float64)
    total = strategy.reduce("SUM", strategy.run(lambda: tf.identity(values)), axis=None).numpy()
    n = total[0]
    if abs(total[1] - n * step) > 0.5 or abs(total[2] - n * float(step) ** 2) > 0.5:
        raise MultiWorkerError(
            f"the workers resumed at different steps (this one, {role.name}, at {step} from "
            f"{checkpoint_dir}; mean {total[1] / n:g}): every worker restores the chief's "
            "checkpoint, so the checkpoint folder must be one shared folder (or a copy of the "
            "chief's on every machine)")


def lost_worker_message(error: BaseException, role: WorkerRole, step: int,
                        checkpoint_dir) -> str:
    """The one line a worker ends with when a peer of its multi-worker run is gone."""
    latest = tf.train.latest_checkpoint(str(checkpoint_dir)) or "none yet"
    return (f"task {lost_task(error, role)} of the multi-worker run is lost (at step {step}: "
            f"{type(error).__name__}, {_error_summary(error)}); {role.name} stopped too. The last "
            f"checkpoint, {latest}, is intact: start every worker again with the same command "
            "and TF_CONFIG to resume from it.")


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
        # oneDNN would have run it: these are TF's own (emulated) CPU kernels.
        log.warning("%s convolutions run on TensorFlow's own CPU kernels here, not oneDNN's "
                    "(no dilated %s gradient: %s). Training works (the dilated convs run as "
                    "ordinary convs on the map's phases, the same sum) but ran 8x slower than "
                    "float32 when measured; leave out --mixed_precision for speed "
                    "(docs/performance.md)", mode, mode, dilated)
    elif not cpu_has_bfloat16():
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
