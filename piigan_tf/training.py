"""Training: ``Trainer(config).fit()`` is what ``train.py`` runs.

``Trainer`` resolves the dataset, builds the model through
``piigan_tf.builders``, keeps the run's checkpoints in a
``piigan_tf.checkpoints.CheckpointStore``, and trains with ``model.fit``'s
loop written out (:meth:`Trainer._run`: one Keras epoch, one batch per
iteration; Keras' own ``fit`` cannot drive this model under a multi-worker
strategy) and Keras callbacks from ``piigan_tf.callbacks``: the NaN guard,
TensorBoard summaries and ``losses.jsonl`` every VAL_PSTEPS, evaluation every
EVAL_STEPS, a checkpoint every TRAIN_SPE, SIGTERM/Ctrl-C handling and a
progress bar. Users add their own Keras callbacks with
``Trainer.fit(callbacks=[...])``.

Exact resume: a checkpoint holds the weights and both optimizers; the data
stream (``builders.training_dataset``) starts at any step and draws the noise
from ``(SEED, step)``, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from piigan_tf import callbacks as cb
from piigan_tf.builders import build_piigan, training_dataset, validation_batch
from piigan_tf.callbacks import TrainingDiverged
from piigan_tf.checkpoints import (CheckpointReadError, CheckpointStore, CheckpointWriteError,
                                   error_text)
from piigan_tf.config import Config
from piigan_tf.data import read_flist, resolve_dataset, scan_files
from piigan_tf.distribute import (PEER_ERRORS, WorkerLostError, check_same_step,
                                  lost_worker_message, save_worker_copy, scratch_dir,
                                  shard_by_batch, to_batch_major, worker_role)
from piigan_tf.model import PiiGAN
from piigan_tf.utils import image_grid

log = logging.getLogger("piigan_tf")

__all__ = ["CheckpointReadError", "CheckpointWriteError", "ConfigMismatchError",
           "DataPipelineError", "LossLog", "Trainer", "TrainingDiverged", "dataset_name",
           "parameter_summary", "read_loss_log", "seed_everything"]


class ConfigMismatchError(ValueError):
    """A checkpoint directory holds a run with an incompatible configuration."""


class DataPipelineError(RuntimeError):
    """The training input pipeline failed (e.g. no image of an epoch could be decoded)."""


# Keys that change variable shapes or the data stream: a run resumed with
# different values would not restore (or would silently change the data).
_RESUME_KEYS = ("IMG_SHAPES", "HEIGHT", "WIDTH", "EXTRACTOR_ACTIVATION", "D_STEPS")


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
                        self.path, error_text(e))

    def write(self, step: int, logs: dict) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps({"step": int(step), **logs}) + "\n")
            self._file.flush()
        except OSError as e:
            log.warning("cannot write %s (%s); losses go to TensorBoard only",
                        self.path, error_text(e))
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
    """Trains a PiiGAN model as configured: the fit loop with the run's Keras callbacks.

    Args:
        config: the resolved ``Config``.
        checkpoint_dir: where checkpoints go; default
            ``CHECKPOINT_DIR/<dataset>`` (or ``MODEL_RESTORE`` if set).
        log_dir: TensorBoard folder; default ``LOG_DIR/<dataset>``.
        resume: restore the latest checkpoint in ``checkpoint_dir`` if any;
            with False, :meth:`fit` starts fresh, removing the folder's
            checkpoint files first (nothing else there; nothing at all before
            ``fit`` is called).
        jit_compile: compile the train step with XLA.
        strategy: a ``tf.distribute.Strategy`` (default: the current one).
            BATCH_SIZE is per replica; the global batch is split over the
            replicas and the step equals a single-device step on it.
        mixed_precision: ``None`` (float32), ``"auto"`` (bfloat16 on CPU,
            float16 on GPU), ``"bfloat16"`` or ``"float16"`` (loss-scaled).
            Variables stay float32.
        init_from: a shipped model folder (``pretrained/celeba64``) or a
            training checkpoint folder whose generator weights a *fresh* run
            starts from (fine-tuning); the extractor, the critics and both
            optimizers start new. Ignored when the run resumes from its own
            checkpoint. The generator is fully convolutional, so the image
            size may differ from the source model's.
    """

    def __init__(self, config: Config, checkpoint_dir: str | None = None,
                 log_dir: str | None = None, resume: bool = True, jit_compile: bool = False,
                 strategy: tf.distribute.Strategy | None = None,
                 mixed_precision: str | None = None, init_from: str | None = None):
        self.config = config
        self.init_from = init_from
        name = dataset_name(config.DATASET)
        self.log_dir = Path(log_dir or Path(config.LOG_DIR) / name)
        self.resume = resume
        self.strategy = strategy or tf.distribute.get_strategy()
        # Multi-worker: only the chief writes the run folder; the others log to
        # a temporary folder and save to temporary ones, removed after use
        # (TensorFlow's multi-worker checkpointing), and restore the chief's.
        self.role = worker_role(self.strategy)
        if not self.role.is_chief:
            self.log_dir = scratch_dir(self.role, "logs")
        #: "SIGTERM"/"SIGINT" when the last fit() stopped on that signal, else None.
        self.stopped_by: str | None = None
        self._signal_stop: cb.SignalStop | None = None
        self._saved_step: int | None = None
        self._train_fn = None

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

        self.model = build_piigan(config, mixed_precision, self.strategy,
                                  jit_compile=jit_compile)
        self.compute_dtype = None if self.model.precision == "float32" else self.model.precision
        self.checkpoint_dir = (checkpoint_dir or config.MODEL_RESTORE
                               or Path(config.CHECKPOINT_DIR) / name)

    # ------------------------------------------------------------ checkpoint
    @property
    def checkpoint_dir(self) -> Path:
        return self.store.directory

    @checkpoint_dir.setter
    def checkpoint_dir(self, folder) -> None:
        self.store = CheckpointStore(folder, max_to_keep=3, model=self.model,
                                     g_optimizer=self.model.g_optimizer,
                                     d_optimizer=self.model.d_optimizer)

    @property
    def step(self) -> int:
        """Generator steps done (= reference iterations)."""
        return cb.global_step(self.model)

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

    def _first_non_finite(self) -> str | None:
        """Name of the first NaN/Inf weight or optimizer variable, or None."""
        variables = (list(self.model.weights) + list(self.model.g_optimizer.variables)
                     + list(self.model.d_optimizer.variables))
        for v in variables:
            if tf.as_dtype(v.dtype).is_floating and \
                    not bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))):
                return getattr(v, "path", None) or v.name
        return None

    def _check_finite(self) -> None:
        bad = self._first_non_finite()
        if bad:
            raise ValueError(f"variable {bad} is NaN/Inf")

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
        skipped with a warning in favour of the next older one. A Trainer
        made with ``resume=False`` starts fresh instead: the folder's
        checkpoint files are removed (by the chief), and later calls resume.

        Raises:
            ConfigMismatchError: the folder holds a run with another configuration.
            CheckpointReadError: checkpoints exist but none can be restored.
        """
        if not self.resume:
            if self.role.is_chief:
                self.store.clear()
            self.resume = True  # this run's own checkpoints from now on
            return self.step  # 0 for a new model
        if self.role.is_chief:  # the others only read the chief's folder
            self.store.remove_debris()
        if not self.store.candidates():
            return 0
        self._check_config_compatible()
        path = self.store.restore(check=self._check_finite)
        if path is None:
            return 0
        log.info("resumed from %s at step %d", path, self.step)
        self._apply_configured_learning_rate()
        return self.step

    def warm_start(self) -> str:
        """Sets the generator's weights from ``init_from``. Returns the source file.

        Raises:
            CheckpointReadError: the source is missing, unreadable, or its
                generator does not fit this one (one line naming it).
        """
        from piigan_tf.inference import load_generator

        try:
            source, _, path = load_generator(self.init_from)
        except (RuntimeError, OSError, ValueError) as e:  # incl. CheckpointNotFoundError
            raise CheckpointReadError(f"cannot start from --init_from {self.init_from}: "
                                      f"{error_text(e)}") from None
        target = self.model.generator.weights
        values = source.get_weights()
        misfit = [f"{v.path} {list(v.shape)} vs {list(x.shape)}" for v, x in zip(target, values)
                  if tuple(v.shape) != tuple(x.shape)]
        if len(values) != len(target) or misfit:
            raise CheckpointReadError(
                f"cannot start from --init_from {self.init_from}: its generator does not fit "
                f"this one ({len(values)} vs {len(target)} weights; {'; '.join(misfit[:2])})")
        self.model.generator.set_weights(values)
        log.info("fresh run: generator initialised from %s (extractor, critics and "
                 "optimizers start new)", path)
        return path

    def _write_config(self) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.config.dump(self.checkpoint_dir / "config.yml")

    def save(self) -> str:
        """Writes a checkpoint for the current step.

        Atomic: a kill at any moment leaves the previous checkpoint as the one
        a restart resumes from (see ``CheckpointStore.remove_debris``).

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
                f"checkpoint written for it (last good: {self.store.latest or 'none'}). "
                "Lower the learning rate (--set LEARNING_RATE=...) or check the data.")
        if not self.role.is_chief:
            path = save_worker_copy(self.store.checkpoint, self.role, step)
        else:
            path = self.store.save(
                step, passthrough=PEER_ERRORS if self.role.num_workers > 1 else (),
                prepare=self._write_config)
            log.info("saved checkpoint %s", path)
        self._saved_step = step
        return path

    # ------------------------------------------------------------------ data
    def train_dataset(self, start: int = 0) -> tf.data.Dataset:
        """The training stream from element ``start`` on (``builders.training_dataset``)."""
        return training_dataset(self.config, self.train_files, start_batch=start,
                                batch_size=self.config.BATCH_SIZE
                                * self.strategy.num_replicas_in_sync)

    def _input(self, start: int = 0):
        """``train_dataset`` as the compiled step reads it (split over replicas)."""
        ds = self.train_dataset(start)
        if self.strategy.num_replicas_in_sync == 1:
            return ds
        # tf.distribute splits elements along axis 0: make it the batch axis
        # (PiiGAN.train_step transposes each replica's share back).
        ds = ds.map(to_batch_major, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return self.strategy.experimental_distribute_dataset(shard_by_batch(ds))

    def _compiled_step(self):
        """One iteration as a ``tf.function``: ``strategy.run(model.train_step)``.

        What ``model.fit`` would compile; returns the (already cross-replica)
        loss means of the first replica.
        """
        if self._train_fn is None:
            model, strategy = self.model, self.strategy

            def step(data):
                out = strategy.run(model.train_step, args=(data,))
                if strategy.num_replicas_in_sync == 1:
                    return out
                return {k: strategy.experimental_local_results(v)[0] for k, v in out.items()}

            self._train_fn = tf.function(step, jit_compile=bool(model.jit_compile) or None,
                                         reduce_retracing=True)
        return self._train_fn

    def _run(self, start: int, max_iters: int, callbacks: list) -> None:
        """The steps from ``start`` to ``max_iters``, each followed by the callbacks.

        The loop of ``model.fit`` (one epoch, one batch per iteration), written
        out: Keras 3's ``fit`` cannot run a multi-worker strategy on this
        model (it reduces the dict batch across workers for a symbolic build,
        then reduces the scalar logs along axis 0), and reading the next
        element apart from the step tells a data failure from a step failure.
        """
        hooks = keras.callbacks.CallbackList(callbacks, model=self.model)
        train_fn = self._compiled_step()
        iterator = iter(self._input(start))
        self.model.stop_training = False
        hooks.on_train_begin()
        hooks.on_epoch_begin(0)
        for batch in range(max_iters - start):
            hooks.on_train_batch_begin(batch)
            try:
                data = next(iterator)
            except tf.errors.OpError as e:
                if self.role.num_workers > 1 and isinstance(e, PEER_ERRORS):
                    raise
                # Unreadable files are skipped inside the pipeline; what gets
                # here is fatal (e.g. no file of an epoch could be decoded).
                raise DataPipelineError(f"the training data pipeline failed at step "
                                        f"{self.step}: {error_text(e)}") from None
            hooks.on_train_batch_end(batch, train_fn(data))
            if self.model.stop_training:
                break
        hooks.on_epoch_end(0)
        hooks.on_train_end()

    def static_view(self) -> dict | None:
        """Fixed validation images with the reference's centre box (the "static view")."""
        if not self.val_files or self.config.STATIC_VIEW_SIZE <= 0:
            return None
        return validation_batch(self.config, self.val_files)

    # ------------------------------------------------------------ callbacks
    def _on_signal(self, signum, frame):  # noqa: ARG002 - signal handler signature
        if self._signal_stop is not None:
            self._signal_stop.request_stop(signum)

    def _stop_and_save(self, name: str) -> None:
        self.stopped_by = name
        if self._saved_step != self.step:
            self.save()

    def _write_summaries(self, writer, logs: dict, static) -> None:
        """Loss scalars and image grids of this step (every VAL_PSTEPS)."""
        c = self.config
        step = self.step
        with writer.as_default(step=step):
            for name, value in logs.items():
                group = "critic" if name.startswith(("d_", "gp_")) else "generator"
                tf.summary.scalar(f"losses/{group}/{name}", value)
            n = c.VIZ_MAX_OUT
            # The batch this step's generator update saw: element step - 1 of
            # the stream, rebuilt (the stream is a function of the step).
            element = next(iter(self.train_dataset(step - 1).take(1)))
            images, masks = element["images"][-1][:n], element["masks"][-1][:n]
            # Noise from (SEED, step), not the training noise: summaries must not
            # change what training draws.
            z = tf.random.stateless_normal(tf.shape(masks), seed=[c.SEED, step])
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

    def _log_losses(self, writer, loss_log, static, step: int, logs: dict) -> None:
        self._write_summaries(writer, logs, static)
        loss_log.write(step, logs)
        for tracker in self.model.metrics:  # the next line averages the steps after this one
            tracker.reset_state()

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

    # ------------------------------------------------------------------ loop
    def fit(self, max_iters: int | None = None, progress: bool = True,
            callbacks=()) -> dict:
        """Trains until ``max_iters`` generator steps (default MAX_ITERS).

        The fit loop (:meth:`_run`) over the training stream from the
        restored step, one Keras batch per iteration, with the run's callbacks: the NaN guard,
        summaries and ``losses.jsonl`` every VAL_PSTEPS, evaluation every
        EVAL_STEPS, a checkpoint every TRAIN_SPE and at the end, Ctrl-C /
        SIGTERM handling (a checkpoint, then stop), the progress bar; then
        ``callbacks``, the caller's own Keras callbacks.

        ``losses.jsonl`` gets one JSON object per VAL_PSTEPS (``step`` plus the
        mean of each loss since the previous line); on resume, lines after
        the restored step are dropped.

        Returns:
            The last step's logged losses (means since the last summary).

        Raises:
            TrainingDiverged: a loss or weight became NaN/Inf (nothing is saved for it).
            CheckpointWriteError: a checkpoint could not be written; the previous
                one is intact.
            CheckpointReadError: checkpoints exist but none can be restored.
            DataPipelineError: the input pipeline failed (e.g. no image decodes).
        """
        c = self.config
        max_iters = int(max_iters or c.MAX_ITERS)
        self.stopped_by = None
        for t in self.model.metrics:  # a NaN from an earlier fit() must not linger
            t.reset_state()
        start = self.restore()
        if self.init_from and start == 0 and self.step == 0:
            self.warm_start()
        elif self.init_from:
            log.info("resuming %s at step %d: --init_from %s applies to fresh runs only",
                     self.checkpoint_dir, start, self.init_from)
        if self.role.num_workers > 1:
            check_same_step(self.strategy, start, self.role, self.checkpoint_dir)
        try:  # fail now, not after hours of training, if the folder is unusable
            if self.role.is_chief:
                self._write_config()
        except OSError as e:
            raise CheckpointWriteError(
                f"cannot write to the checkpoint folder {self.checkpoint_dir}: "
                f"{error_text(e)}. Pass a writable --checkpoint_dir.") from e
        loss_log = LossLog(self.log_dir / "losses.jsonl", start)
        writer = tf.summary.create_file_writer(str(self.log_dir))
        static = self.static_view()
        evaluator, eval_log = self._periodic_evaluation(start)
        if evaluator is not None and start == 0:
            self._evaluate(evaluator, eval_log, writer)  # the untrained model: step 0
        self._saved_step = start
        last_logs: dict = {}
        self._signal_stop = cb.SignalStop(self._stop_and_save, handler=self._on_signal)
        bar = cb.ProgressBar(max_iters, start) if progress else None
        run_callbacks = [
            cb.NonFiniteLossGuard(lambda: self.store.latest),
            cb.Every(1, lambda step, logs: last_logs.update(logs)),
            cb.Every(c.VAL_PSTEPS, lambda step, logs: self._log_losses(writer, loss_log, static,
                                                                        step, logs), max_iters),
            cb.Every(c.TRAIN_SPE, lambda step, logs: self.save(), max_iters),
            self._signal_stop,
        ]
        if evaluator is not None:  # after the summaries, before the checkpoint
            run_callbacks.insert(3, cb.Every(c.EVAL_STEPS, lambda step, logs: self._evaluate(
                evaluator, eval_log, writer), max_iters))
        run_callbacks += ([bar] if bar else []) + list(callbacks)
        t0 = time.time()
        try:
            self._run(start, max_iters, run_callbacks)
        except PEER_ERRORS as e:
            if self.role.num_workers == 1:
                raise
            raise WorkerLostError(lost_worker_message(e, self.role, self.step,
                                                      self.checkpoint_dir)) from None
        except KeyboardInterrupt:  # outside the main thread: no signal handler there
            log.warning("interrupted at step %d: saving a checkpoint", self.step)
            if self.step != self._saved_step:
                self.save()
            raise
        finally:
            self._signal_stop.restore_handlers()
            if bar is not None:
                bar.close()
            writer.close()
            loss_log.close()
            if eval_log is not None:
                eval_log.close()
            if not self.role.is_chief:  # this worker's temporary log folder
                shutil.rmtree(self.log_dir, ignore_errors=True)
        log.info("stopped at step %d after %.1f s", self.step, time.time() - t0)
        return last_logs


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
