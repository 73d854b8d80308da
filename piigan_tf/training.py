"""The training loop: data, model, checkpoints, TensorBoard, resume, interrupts.

``Trainer(config).fit()`` is what ``train.py`` runs. It is a plain loop over
``model.train_step`` (compiled with ``tf.function``) rather than
``model.fit``, so that the step counter, checkpoints every ``TRAIN_SPE``
steps, exact resume (weights, both optimizers, noise generator and data
iterator position) and interrupt handling are all under its control.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from piigan_tf.config import Config
from piigan_tf.data import build_dataset, read_flist, resolve_dataset, scan_files
from piigan_tf.data.noise import add_training_noise
from piigan_tf.distribute import (PEER_ERRORS, WorkerLostError, check_same_step,
                                  dtype_policy, from_batch_major, lost_worker_message,
                                  resolve_mixed_precision, save_worker_copy, scratch_dir,
                                  shard_by_batch, to_batch_major, worker_role)
from piigan_tf.model import PiiGAN, default_optimizer
from piigan_tf.utils import image_grid

log = logging.getLogger("piigan_tf")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; no checkpoint was written for that step."""


class ConfigMismatchError(ValueError):
    """A checkpoint directory holds a run with an incompatible configuration."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, unwritable folder, ...).

    The previous checkpoint is left as it was; the message names the folder,
    the OS error and the checkpoint a rerun resumes from.
    """


class CheckpointReadError(RuntimeError):
    """No checkpoint in a folder could be restored (all are unreadable)."""


class DataPipelineError(RuntimeError):
    """The training input pipeline failed (e.g. no image of an epoch could be decoded)."""


# Keys that change variable shapes or the data stream: a run resumed with
# different values would not restore (or would silently change the data).
_RESUME_KEYS = ("IMG_SHAPES", "HEIGHT", "WIDTH", "EXTRACTOR_ACTIVATION", "D_STEPS")

# Entries a CheckpointManager writes: ckpt-N.index, ckpt-N.data-K-of-M,
# ckpt-N_temp/ (during a save) and *.tempstate* files (being renamed into place).
_CKPT_FILE = re.compile(r"ckpt-(\d+)(_temp|\.index.*|\.data-\d+-of-\d+.*)")


def _error_text(error: BaseException) -> str:
    """A one-line description of an OS or TensorFlow error, with its errno name."""
    if isinstance(error, tf.errors.OpError):
        text = re.sub(r"\s*\[\[\{\{.*?\]\]", "", error.message)  # graph node annotations
        text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
        text = re.sub(r"\s*\[Op:\w+\]( name: \S*)?", "", text)
    elif isinstance(error, OSError) and error.errno is not None:
        import errno as errno_module

        name = errno_module.errorcode.get(error.errno, str(error.errno))
        where = f": {error.filename}" if error.filename else ""
        text = f"[{name}] {error.strerror}{where}"
    else:
        text = str(error)
    return " ".join(text.split())[:500]


def dataset_name(dataset: str) -> str:
    """Short name of a dataset option, used for the checkpoint and log folders."""
    p = Path(dataset)
    if p.suffix == ".flist":
        return p.parent.name or p.stem
    return p.name if os.sep in dataset or p.exists() else dataset


class LossLog:
    """``losses.jsonl``: one JSON object per logged step, safe under kills and resume.

    Opening it for a run resumed at ``start`` keeps only the complete lines
    with ``step <= start`` (a kill can leave later lines, or half a line);
    the file is rewritten atomically, then appended to and flushed line by
    line. Values are written with ``repr`` precision, so they compare exactly.
    A write error (disk full) is logged once and logging stops; the checkpoint
    save that follows reports the problem.
    """

    def __init__(self, path: Path, start: int):
        self.path = Path(path)
        self._file = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            kept = []
            if start > 0 and self.path.exists():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict) and record.get("step", math.inf) <= start:
                        kept.append(line + "\n")
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(kept), encoding="utf-8")
            tmp.replace(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            log.warning("cannot write %s (%s); losses go to TensorBoard only",
                        self.path, _error_text(e))

    def write(self, step: int, logs: dict) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps({"step": int(step), **logs}) + "\n")
            self._file.flush()
        except OSError as e:
            log.warning("cannot write %s (%s); losses go to TensorBoard only",
                        self.path, _error_text(e))
            self.close()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


def read_loss_log(path: str | os.PathLike) -> list[dict]:
    """The records of a ``losses.jsonl``, skipping a line cut short by a kill."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


class Trainer:
    """Trains a PiiGAN model as configured.

    Args:
        config: the resolved ``Config``.
        checkpoint_dir: where checkpoints go; default
            ``CHECKPOINT_DIR/<dataset>`` (or ``MODEL_RESTORE`` if set).
        log_dir: TensorBoard folder; default ``LOG_DIR/<dataset>``.
        resume: restore the latest checkpoint in ``checkpoint_dir`` if any; with
            False, existing checkpoints there are deleted (a fresh run).
        jit_compile: compile the train step with XLA.
        strategy: a ``tf.distribute.Strategy`` (default: the current one).
            BATCH_SIZE is per replica; the global batch is split over the
            replicas and the step equals a single-device step on it.
        mixed_precision: ``None`` (float32), ``"auto"`` (bfloat16 on CPU,
            float16 on GPU), ``"bfloat16"`` or ``"float16"`` (loss-scaled).
            Variables stay float32.
    """

    def __init__(self, config: Config, checkpoint_dir: str | None = None,
                 log_dir: str | None = None, resume: bool = True, jit_compile: bool = False,
                 strategy: tf.distribute.Strategy | None = None,
                 mixed_precision: str | None = None):
        self.config = config
        name = dataset_name(config.DATASET)
        self.checkpoint_dir = Path(checkpoint_dir or config.MODEL_RESTORE
                                   or Path(config.CHECKPOINT_DIR) / name)
        self.log_dir = Path(log_dir or Path(config.LOG_DIR) / name)
        self.resume = resume
        self.jit_compile = jit_compile
        self.strategy = strategy or tf.distribute.get_strategy()
        # Multi-worker: only the chief writes the run folder; the others log to
        # a temporary folder and save to temporary ones, removed after use
        # (TensorFlow's multi-worker checkpointing), and restore the chief's.
        self.role = worker_role(self.strategy)
        if not self.role.is_chief:
            self.log_dir = scratch_dir(self.role, "logs")
        self._stop_signal = None
        #: "SIGTERM"/"SIGINT" when the last fit() stopped on that signal, else None.
        self.stopped_by: str | None = None

        train_flist, val_flist = resolve_dataset(config.DATASET, config.DATA_DIR)
        self.train_files, bad = scan_files(read_flist(train_flist))
        self.val_files = []
        if config.VAL and val_flist and Path(val_flist).exists():
            try:
                self.val_files, _ = scan_files(read_flist(val_flist))
            except ValueError as e:  # an unusable validation list only costs the static view
                log.warning("validation images unusable, no static view: %s", e)
        log.info("dataset %s: %d training files (%d skipped), %d validation files",
                 config.DATASET, len(self.train_files), bad, len(self.val_files))

        self.compute_dtype = resolve_mixed_precision(mixed_precision)
        if self.compute_dtype == "float16" and config.GRADIENT_CLIP:
            raise ValueError("GRADIENT_CLIP does not combine with float16 loss scaling; use "
                             "--mixed_precision bfloat16 or turn GRADIENT_CLIP off")
        with self.strategy.scope(), dtype_policy(self.compute_dtype):
            self.model = PiiGAN.from_config_object(config)
            optimizers = [default_optimizer(name, config.LEARNING_RATE, config.BETA_1,
                                            config.BETA_2)
                          for name in ("g_optimizer", "d_optimizer")]
            if self.compute_dtype == "float16":  # float16 gradients underflow unscaled
                optimizers = [keras.optimizers.LossScaleOptimizer(o, name=o.name)
                              for o in optimizers]
            self.model.compile(g_optimizer=optimizers[0], d_optimizer=optimizers[1])
        if not resume and self.role.is_chief and self.checkpoint_dir.exists():
            shutil.rmtree(self.checkpoint_dir)
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, g_optimizer=self.model.g_optimizer,
            d_optimizer=self.model.d_optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.checkpoint_dir),
                                                  max_to_keep=3)
        self._train_fn = None

    # ------------------------------------------------------------------ data
    def train_dataset(self, start: int = 0) -> tf.data.Dataset:
        """The training stream from element ``start`` on.

        Each element holds the D_STEPS + 1 batches of one iteration, so the
        data position of a run is its step: resuming at step n rebuilds the
        stream with ``start_batch=n`` (exact, and nothing before it is read)
        instead of storing iterator buffers in every checkpoint.
        """
        c = self.config
        ds = build_dataset(
            self.train_files, c.IMG_SHAPES, c.BATCH_SIZE * self.strategy.num_replicas_in_sync,
            box_shape=c.box_hw, max_delta=(c.MAX_DELTA_HEIGHT, c.MAX_DELTA_WIDTH),
            margins=(c.VERTICAL_MARGIN, c.HORIZONTAL_MARGIN), mask_type=c.MASK_TYPE,
            random_crop=c.RANDOM_CROP, group=c.D_STEPS + 1, shuffle=True, repeat=True,
            seed=c.SEED, start_batch=start)
        # The noise (z, alpha, eps) is data too, drawn from (SEED, step): a
        # resumed run gets the same noise, and a distributed step the same
        # noise per sample as the single-device step.
        return add_training_noise(ds, c.box_hw, seed=c.SEED, start=start)

    def _input(self, start: int = 0):
        """``train_dataset`` as the compiled step reads it (split over replicas)."""
        ds = self.train_dataset(start)
        if self.strategy.num_replicas_in_sync == 1:
            return ds
        # tf.distribute splits elements along axis 0: make it the batch axis.
        ds = ds.map(to_batch_major, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return self.strategy.experimental_distribute_dataset(shard_by_batch(ds))

    def _local_element(self, data) -> dict:
        """This worker's part of an element from ``_input``, as [K, B, ...] tensors."""
        if self.strategy.num_replicas_in_sync == 1:
            return data
        parts = {k: self.strategy.experimental_local_results(v) for k, v in data.items()}
        return from_batch_major({k: tf.concat(v, axis=0) for k, v in parts.items()})

    def static_view(self) -> dict | None:
        """Fixed validation images with the reference's centre box (the "static view")."""
        c = self.config
        if not self.val_files or c.STATIC_VIEW_SIZE <= 0:
            return None
        files = self.val_files[:c.STATIC_VIEW_SIZE]
        ds = build_dataset(files, c.IMG_SHAPES, len(files), box_shape=c.box_hw,
                           max_delta=(0, 0), mask_type="box", random_crop=c.RANDOM_CROP,
                           shuffle=False, repeat=False, seed=c.SEED, drop_remainder=False)
        for batch in ds.take(1):
            return batch
        return None

    # ------------------------------------------------------------ checkpoint
    @property
    def step(self) -> int:
        """Generator steps done (= reference iterations)."""
        return int(self.model.g_optimizer.iterations.numpy())

    def _check_config_compatible(self) -> None:
        saved = self.checkpoint_dir / "config.yml"
        if not saved.exists():
            return
        import yaml
        old = yaml.safe_load(saved.read_text()) or {}
        diffs = [f"{k}: checkpoint {old.get(k)!r} vs now {getattr(self.config, k)!r}"
                 for k in _RESUME_KEYS if k in old and old[k] != getattr(self.config, k)]
        if self.resume and old.get("DATASET") not in (None, self.config.DATASET):
            # Allowed (fine-tuning on new data), but never silently: two
            # folders both named ``train`` share checkpoints/train.
            log.warning("%s holds a run trained on DATASET %r; it is resumed on %r. Pass "
                        "--checkpoint_dir to keep the two runs apart, or --fresh to start over.",
                        self.checkpoint_dir, old.get("DATASET"), self.config.DATASET)
        if diffs:
            raise ConfigMismatchError(
                f"{self.checkpoint_dir} holds a run with a different configuration ("
                + "; ".join(diffs) + "). Pass another --checkpoint_dir, or --fresh to "
                "start over in this folder.")

    def _checkpoint_files(self) -> list[tuple[int, str, Path]]:
        """``(number, kind, path)`` of the ``ckpt-N*`` entries in the checkpoint folder."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = []
        for entry in self.checkpoint_dir.iterdir():
            m = _CKPT_FILE.fullmatch(entry.name)
            if m:
                found.append((int(m.group(1)), m.group(2), entry))
        return found

    def _remove_partial_checkpoints(self) -> None:
        """Deletes what an interrupted or failed save left behind.

        TensorFlow writes ``ckpt-N`` through a ``ckpt-N_temp/`` folder and
        ``.tempstate`` files renamed into place, and the ``checkpoint`` file
        (rewritten atomically) names ``ckpt-N`` only after it is complete. So
        temp folders, and checkpoint files newer than the last one that file
        names, are debris of a kill or a write error: never restored, they
        only take disk space (160 MB each even for the tiny preset).
        """
        recorded = {Path(p).name for p in self.manager.checkpoints}
        latest = self.manager.latest_checkpoint
        if latest is None:  # without an index nothing is known to be debris
            newest = None
        else:
            newest = int(Path(latest).name.rsplit("-", 1)[1])
        for number, kind, path in self._checkpoint_files():
            stale = kind == "_temp" or ".tempstate" in kind or (
                newest is not None and number > newest and f"ckpt-{number}" not in recorded)
            if stale:
                log.info("removing %s, left by an interrupted checkpoint save", path)
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def _restore_candidates(self) -> list[str]:
        """Checkpoints to try, newest first: those the ``checkpoint`` file names.

        If that file is missing but complete ``ckpt-N.index`` files are there
        (e.g. copied without it), those are used instead of starting over.
        """
        if self.manager.checkpoints:
            return list(reversed(self.manager.checkpoints))
        numbers = sorted({n for n, kind, _ in self._checkpoint_files() if kind == ".index"},
                         reverse=True)
        if numbers:
            log.warning("%s has checkpoint files but no 'checkpoint' index file; trying them "
                        "newest first", self.checkpoint_dir)
        return [str(self.checkpoint_dir / f"ckpt-{n}") for n in numbers]

    def _first_non_finite(self) -> str | None:
        """Name of the first NaN/Inf weight or optimizer variable, or None."""
        variables = (list(self.model.weights) + list(self.model.g_optimizer.variables)
                     + list(self.model.d_optimizer.variables))
        for v in variables:
            if tf.as_dtype(v.dtype).is_floating and \
                    not bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))):
                return getattr(v, "path", None) or v.name
        return None

    def _apply_configured_learning_rate(self) -> None:
        # The optimizers checkpoint their learning rate; the configured one
        # wins, so that `--set LEARNING_RATE=...` on a rerun (what the
        # divergence message advises) takes effect instead of being restored over.
        for optimizer in (self.model.g_optimizer, self.model.d_optimizer):
            variable = getattr(optimizer, "_learning_rate", None)
            if not hasattr(variable, "assign"):  # a schedule: nothing to override
                continue
            old = float(variable.numpy())
            if np.float32(old) != np.float32(self.config.LEARNING_RATE):
                log.info("%s: learning rate %g from the config (checkpoint had %g)",
                         optimizer.name, self.config.LEARNING_RATE, old)
                variable.assign(self.config.LEARNING_RATE)

    def restore(self) -> int:
        """Restores the latest complete checkpoint, if any. Returns the step.

        A checkpoint that cannot be read (truncated, corrupt, NaN weights) is
        skipped with a warning in favour of the next older one.

        Raises:
            ConfigMismatchError: the folder holds a run with another configuration.
            CheckpointReadError: checkpoints exist but none can be restored.
        """
        if not self.resume:
            return 0
        if self.role.is_chief:  # the others only read the chief's folder
            self._remove_partial_checkpoints()
        candidates = self._restore_candidates()
        if not candidates:
            return 0
        self._check_config_compatible()
        problems = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
                bad = self._first_non_finite()
                if bad:
                    raise ValueError(f"variable {bad} is NaN/Inf")
            except Exception as e:  # noqa: BLE001 - any failure makes this one unusable
                problems.append(f"{path}: {_error_text(e)}")
                log.warning("cannot restore %s (%s); trying the previous checkpoint",
                            path, _error_text(e))
                continue
            log.info("resumed from %s at step %d", path, self.step)
            self._apply_configured_learning_rate()
            return self.step
        raise CheckpointReadError(
            f"none of the {len(candidates)} checkpoints in {self.checkpoint_dir} can be "
            f"restored ({'; '.join(problems)}). Move the folder away to keep it, or pass "
            "--fresh to start over (this deletes it).")

    def save(self) -> str:
        """Writes a checkpoint for the current step.

        Atomic: a kill at any moment leaves the previous checkpoint as the one
        a restart resumes from (see :meth:`_remove_partial_checkpoints`).

        Raises:
            TrainingDiverged: a weight or optimizer variable is NaN/Inf; nothing
                is written.
            CheckpointWriteError: the write failed (disk full, unwritable
                folder); the previous checkpoint is intact.
        """
        step = self.step
        bad = self._first_non_finite()
        if bad:
            raise TrainingDiverged(
                f"variable {bad} became NaN/Inf at step {step}; training stopped, no "
                f"checkpoint written for it (last good: "
                f"{self.manager.latest_checkpoint or 'none'}). Lower the learning rate "
                "(--set LEARNING_RATE=...) or check the data.")
        if not self.role.is_chief:
            return save_worker_copy(self.checkpoint, self.role, step)
        try:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            self.config.dump(self.checkpoint_dir / "config.yml")
            path = self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:
            if self.role.num_workers > 1 and isinstance(e, PEER_ERRORS):
                raise
            try:
                self._remove_partial_checkpoints()  # frees the space a partial write took
            except OSError:
                pass
            raise CheckpointWriteError(
                f"could not write the checkpoint for step {step} to {self.checkpoint_dir}: "
                f"{_error_text(e)}. The previous checkpoint "
                f"({self.manager.latest_checkpoint or 'none'}) is intact; free disk space or "
                "fix the folder (or pass --checkpoint_dir), then run the same command to "
                "resume from it.") from e
        log.info("saved checkpoint %s", path)
        return path

    # ------------------------------------------------------------------ loop
    def _compiled_step(self):
        if self._train_fn is None:
            model, strategy = self.model, self.strategy

            if strategy.num_replicas_in_sync == 1:
                def step(data):
                    return strategy.run(model.train_step, args=(data,))
            else:
                def step(data):  # each replica's share arrives batch-major
                    return strategy.run(lambda d: model.train_step(from_batch_major(d)),
                                        args=(data,))

            self._train_fn = tf.function(step, jit_compile=self.jit_compile or None,
                                         reduce_retracing=True)
        return self._train_fn

    def _on_signal(self, signum, frame):  # noqa: ARG002 - signal handler signature
        self._stop_signal = signum

    def _write_summaries(self, writer, logs: dict, data, static) -> None:
        c = self.config
        with writer.as_default(step=self.step):
            for name, value in logs.items():
                group = "critic" if name.startswith(("d_", "gp_")) else "generator"
                tf.summary.scalar(f"losses/{group}/{name}", value)
            n = c.VIZ_MAX_OUT
            data = self._local_element(data)
            images, masks = data["images"][-1][:n], data["masks"][-1][:n]
            # Noise from (SEED, step), not the training noise generator: drawing
            # from that would make the training noise depend on how often (and
            # up to which max_iters) summaries are written, breaking exact resume.
            z = tf.random.stateless_normal(tf.shape(masks), seed=[c.SEED, self.step])
            viz = self.model.visualize(images, masks, z=z)
            tf.summary.image("train/real|incomplete|completed|x2|x1",
                             image_grid(viz), max_outputs=n)
            if static is not None:
                completed = self.model.complete_fixed(static["images"], static["masks"],
                                                      seed=c.SEED)
                tf.summary.image("static_view/real|incomplete|completed", image_grid(
                    [static["images"], static["images"] * (1 - static["masks"]), completed]),
                    max_outputs=len(static["images"]))
        writer.flush()

    def _periodic_evaluation(self, start: int):
        """``(PeriodicEvaluator, EvalLog)`` when EVAL_STEPS is on, else ``(None, None)``."""
        from piigan_tf.periodic_evaluation import EvalLog, PeriodicEvaluator

        if self.config.EVAL_STEPS <= 0 or not self.role.is_chief:  # the chief's run folder only
            return None, None
        if not self.val_files:
            log.warning("EVAL_STEPS=%d but there are no validation images: no evaluation",
                        self.config.EVAL_STEPS)
            return None, None
        try:
            evaluator = PeriodicEvaluator(self.config, self.val_files)
        except ValueError as e:
            log.warning("no evaluation during training: %s", e)
            return None, None
        log.info("evaluating every %d steps on %d validation images x %d samples -> %s",
                 self.config.EVAL_STEPS, len(evaluator.images), evaluator.num_samples,
                 self.log_dir / "eval.csv")
        return evaluator, EvalLog(self.log_dir / "eval.csv", start)

    def _evaluate(self, evaluator, eval_log, writer) -> dict:
        """Scores the generator now; writes a row of eval.csv and ``eval/*`` scalars."""
        t0 = time.perf_counter()
        scores = evaluator(self.model.generator)
        eval_log.write(self.step, scores)
        with writer.as_default(step=self.step):
            for name, value in scores.items():
                tf.summary.scalar(f"eval/{name}", value)
        writer.flush()
        log.info("step %d: hole PSNR %.2f dB (best of %d %.2f), hole SSIM %.4f, hole L1 %.4f, "
                 "diversity %.4f; Telea %.2f dB (%.1f s)", self.step, scores["psnr_hole"],
                 evaluator.num_samples, scores["best_psnr_hole"], scores["ssim_hole"],
                 scores["l1_hole"], scores["diversity_l1"], scores["telea_psnr_hole"],
                 time.perf_counter() - t0)
        return scores

    def fit(self, max_iters: int | None = None, progress: bool = True) -> dict:
        """Trains until ``max_iters`` generator steps (default MAX_ITERS).

        Checkpoints every TRAIN_SPE steps, at the end, and on Ctrl-C / SIGTERM.
        Returns the last logged losses.

        Each time the summaries are written (every VAL_PSTEPS steps) the
        losses also go to ``<log_dir>/losses.jsonl``, one JSON object per line
        (``step`` plus the mean of each loss since the previous line); on
        resume, lines after the restored step are dropped.

        Raises:
            TrainingDiverged: a loss or weight became NaN/Inf (nothing is saved for it).
            CheckpointWriteError: a checkpoint could not be written; the previous
                one is intact.
            CheckpointReadError: checkpoints exist but none can be restored.
            DataPipelineError: the input pipeline failed (e.g. no image decodes).
        """
        from tqdm.auto import tqdm

        c = self.config
        max_iters = int(max_iters or c.MAX_ITERS)
        self._stop_signal = self.stopped_by = None
        for t in self.model.metrics:  # a NaN from an earlier fit() must not linger
            t.reset_state()
        start = self.restore()
        if self.role.num_workers > 1:
            check_same_step(self.strategy, start, self.role, self.checkpoint_dir)
        try:  # fail now, not after hours of training, if the folder is unusable
            if self.role.is_chief:
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                self.config.dump(self.checkpoint_dir / "config.yml")
        except OSError as e:
            raise CheckpointWriteError(
                f"cannot write to the checkpoint folder {self.checkpoint_dir}: "
                f"{_error_text(e)}. Pass a writable --checkpoint_dir.") from e
        loss_log = LossLog(self.log_dir / "losses.jsonl", start)
        writer = tf.summary.create_file_writer(str(self.log_dir))
        static = self.static_view()
        evaluator, eval_log = self._periodic_evaluation(start)
        if evaluator is not None and start == 0:
            self._evaluate(evaluator, eval_log, writer)  # the untrained model: step 0
        train_fn = self._compiled_step()
        iterator = iter(self._input(start))
        old_handlers = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                old_handlers[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: leave signals alone
                pass
        logs: dict = {}
        bar = tqdm(total=max_iters, initial=start, disable=not progress, unit="it",
                   dynamic_ncols=True, desc="train")
        last_saved = start
        t0 = time.time()
        try:
            while self.step < max_iters:
                try:
                    data = next(iterator)
                except tf.errors.OpError as e:
                    if self.role.num_workers > 1 and isinstance(e, PEER_ERRORS):
                        raise
                    # Unreadable files are skipped inside the pipeline; what gets
                    # here is fatal (e.g. no file of an epoch could be decoded).
                    raise DataPipelineError(
                        f"the training data pipeline failed at step {self.step}: "
                        f"{_error_text(e)}") from None
                out = train_fn(data)
                logs = {k: float(self.strategy.reduce("MEAN", v, axis=None)
                                 if self.strategy.num_replicas_in_sync > 1 else v)
                        for k, v in out.items()}
                bad = [k for k, v in logs.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingDiverged(
                        f"loss {bad[0]} became {logs[bad[0]]} at step {self.step}; "
                        f"training stopped, no checkpoint written for it (last good: "
                        f"{self.manager.latest_checkpoint or 'none'}). Lower the learning "
                        f"rate (--set LEARNING_RATE=...) or check the data.")
                bar.update(1)
                bar.set_postfix({k: f"{logs[k]:.3g}" for k in ("d_loss", "g_loss", "ae", "kl")})
                step = self.step
                if step % c.VAL_PSTEPS == 0 or step == max_iters:
                    self._write_summaries(writer, logs, data, static)
                    loss_log.write(step, logs)
                    for t in self.model.metrics:
                        t.reset_state()
                if evaluator is not None and (step % c.EVAL_STEPS == 0 or step == max_iters):
                    self._evaluate(evaluator, eval_log, writer)
                if step % c.TRAIN_SPE == 0 or step == max_iters:
                    self.save()
                    last_saved = step
                if self._stop_signal is not None:
                    name = self.stopped_by = signal.Signals(self._stop_signal).name
                    log.warning("%s received at step %d: saving a checkpoint and stopping",
                                name, step)
                    if last_saved != step:
                        self.save()
                    break
        except PEER_ERRORS as e:
            if self.role.num_workers == 1:
                raise
            raise WorkerLostError(lost_worker_message(e, self.role, self.step,
                                                      self.checkpoint_dir)) from None
        except KeyboardInterrupt:
            log.warning("interrupted at step %d: saving a checkpoint", self.step)
            if self.step != last_saved:
                self.save()
            raise
        finally:
            bar.close()
            writer.close()
            loss_log.close()
            if eval_log is not None:
                eval_log.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            if not self.role.is_chief:  # this worker's temporary log folder
                shutil.rmtree(self.log_dir, ignore_errors=True)
        log.info("stopped at step %d after %.1f s", self.step, time.time() - t0)
        return logs


def parameter_summary(config: Config) -> str:
    """Parameter count of each network at the configured size, as a table."""
    model = PiiGAN.from_config_object(config)
    model.build()
    rows = [(m.name, m.count_params()) for m in
            (model.generator, model.extractor, model.local_critic, model.global_critic)]
    width = max(len(n) for n, _ in rows)
    lines = [f"{'network'.ljust(width)}  parameters", "-" * (width + 12)]
    lines += [f"{n.ljust(width)}  {p:>10,}" for n, p in rows]
    lines.append(f"{'total'.ljust(width)}  {sum(p for _, p in rows):>10,}")
    h, w = config.img_hw
    lines.append(f"(image {h}x{w}, hole box {config.HEIGHT}x{config.WIDTH})")
    return "\n".join(lines)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds Python, NumPy and TF; optionally makes TF runs bit-reproducible.

    ``deterministic`` turns on deterministic ops and turns off Grappler's
    graph rewrites: op determinism alone is not enough, because Grappler's
    memory optimizer rewrites some gradient ``AddN`` sums (e.g. the three
    terms of the extractor's log-variance gradient) into accumulate-as-they-
    arrive ``AssignAdd`` chains, whose order, and so the last bits of the sum,
    depends on thread scheduling: two runs then drift apart after a few steps.
    """
    import keras

    keras.utils.set_random_seed(seed)  # Python, NumPy, TF and Keras initialisers
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
