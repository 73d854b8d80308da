"""Training: ``Trainer(config).fit()`` is what ``train.py`` runs.

``Trainer`` resolves the dataset, builds the model through
``piigan_tf.builders``, and keeps the run's state (resume, fresh start, warm
start, saves) in a ``piigan_tf.run_state.RunState``. :meth:`Trainer.fit` is
the loop: ``model.fit``'s loop written out (:meth:`Trainer._run`: one Keras
epoch, one batch per iteration; Keras' own ``fit`` cannot drive this model
under a multi-worker strategy) with the Keras callbacks of
``piigan_tf.callbacks``: the NaN guard, summaries and ``losses.jsonl`` every
VAL_PSTEPS, evaluation every EVAL_STEPS, a checkpoint every TRAIN_SPE,
SIGTERM/Ctrl-C handling and a progress bar. Users add their own Keras
callbacks with ``Trainer.fit(callbacks=[...])``.

Exact resume: a checkpoint holds the weights and both optimizers; the data
stream (``builders.training_dataset``) starts at any step and draws the noise
from ``(SEED, step)``, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf

from piigan_tf import callbacks as cb
from piigan_tf.builders import (build_piigan, dataset_files, training_dataset,
                                validation_batch)
from piigan_tf.callbacks import TrainingDiverged
from piigan_tf.checkpoints import CheckpointReadError, CheckpointWriteError, error_text
from piigan_tf.config import Config
from piigan_tf.distribute import (PEER_ERRORS, WorkerLostError, check_same_step,
                                  lost_worker_message, scratch_dir, shard_by_batch,
                                  to_batch_major, worker_role)
from piigan_tf.model import PiiGAN
from piigan_tf.run_logs import StepLog
from piigan_tf.run_state import ConfigMismatchError, RunState

log = logging.getLogger("piigan_tf")

__all__ = ["CheckpointReadError", "CheckpointWriteError", "ConfigMismatchError",
           "DataPipelineError", "Trainer", "TrainingDiverged", "dataset_name",
           "parameter_summary", "seed_everything"]


class DataPipelineError(RuntimeError):
    """The training input pipeline failed (e.g. no image of an epoch could be decoded)."""


def dataset_name(dataset: str) -> str:
    """Short name of a dataset option, used for the checkpoint and log folders."""
    p = Path(dataset)
    if p.suffix == ".flist":
        return p.parent.name or p.stem
    return p.name if os.sep in dataset or p.exists() else dataset


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
        name = dataset_name(config.DATASET)
        self.log_dir = Path(log_dir or Path(config.LOG_DIR) / name)
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
        self._train_fn = None

        self.train_files, self.val_files = dataset_files(config)
        self.model = build_piigan(config, mixed_precision, self.strategy,
                                  jit_compile=jit_compile)
        self.compute_dtype = None if self.model.precision == "float32" else self.model.precision
        #: The run's checkpoints and the rules for resuming, starting fresh and saving.
        self.state = RunState(self.model, config,
                              checkpoint_dir or config.MODEL_RESTORE
                              or Path(config.CHECKPOINT_DIR) / name,
                              self.role, resume=resume, init_from=init_from)

    # ------------------------------------------------------------ run state
    @property
    def config(self) -> Config:
        return self.state.config

    @config.setter
    def config(self, config: Config) -> None:
        self.state.config = config

    @property
    def checkpoint_dir(self) -> Path:
        return self.state.directory

    @checkpoint_dir.setter
    def checkpoint_dir(self, folder) -> None:
        """Points the run at another checkpoint folder (a new ``RunState``)."""
        s = self.state
        self.state = RunState(self.model, s.config, folder, s.role, s.resume, s.init_from)

    @property
    def resume(self) -> bool:
        return self.state.resume

    @resume.setter
    def resume(self, value: bool) -> None:
        self.state.resume = value

    @property
    def store(self):
        """The run's ``CheckpointStore``."""
        return self.state.store

    @property
    def step(self) -> int:
        """Generator steps done (= reference iterations)."""
        return self.state.step

    def restore(self) -> int:
        """``RunState.restore``: resumes from the latest readable checkpoint. Returns the step."""
        return self.state.restore()

    def save(self) -> str:
        """``RunState.save``: a checkpoint of the current step. Returns its path."""
        return self.state.save()

    # ------------------------------------------------------------------ data
    def train_dataset(self, start: int = 0) -> tf.data.Dataset:
        """The training stream from element ``start`` on (``builders.training_dataset``)."""
        return training_dataset(self.config, self.train_files, start_batch=start,
                                batch_size=self.config.BATCH_SIZE
                                * self.strategy.num_replicas_in_sync)

    def _element(self, index: int) -> dict:
        """Element ``index`` of the training stream, rebuilt."""
        return next(iter(self.train_dataset(index).take(1)))

    def _input(self, start: int = 0):
        """``train_dataset`` as the compiled step reads it (split over replicas)."""
        ds = self.train_dataset(start)
        if self.strategy.num_replicas_in_sync == 1:
            return ds
        # tf.distribute splits elements along axis 0: make it the batch axis
        # (PiiGAN.train_step transposes each replica's share back).
        ds = ds.map(to_batch_major, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return self.strategy.experimental_distribute_dataset(shard_by_batch(ds))

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
        self.state.save_if_new()

    def _evaluation(self, writer, start: int, max_iters: int):
        """The ``PeriodicEvaluation`` callback when EVAL_STEPS is on, else None."""
        from piigan_tf.periodic_evaluation import PeriodicEvaluator

        if self.config.EVAL_STEPS <= 0 or not self.role.is_chief:  # the chief's run folder only
            return None
        if not self.val_files:
            log.warning("EVAL_STEPS=%d but there are no validation images: no evaluation",
                        self.config.EVAL_STEPS)
            return None
        try:
            evaluator = PeriodicEvaluator(self.config, self.val_files)
        except ValueError as e:
            log.warning("no evaluation during training: %s", e)
            return None
        log.info("evaluating every %d steps on %d validation images x %d samples -> %s",
                 self.config.EVAL_STEPS, len(evaluator.images), evaluator.num_samples,
                 self.log_dir / "eval.csv")
        return cb.PeriodicEvaluation(evaluator, StepLog(self.log_dir / "eval.csv", start,
                                                        "evaluations"),
                                     writer, self.config.EVAL_STEPS, max_iters)

    def _callbacks(self, writer, loss_log, start: int, max_iters: int, last_logs: dict,
                   progress: bool) -> list:
        """The run's callbacks, in the order they act on each step."""
        c = self.config
        self._signal_stop = cb.SignalStop(self._stop_and_save, handler=self._on_signal)
        run_callbacks = [
            cb.NonFiniteLossGuard(lambda: self.store.latest),  # first: nothing kept of a NaN step
            cb.Every(1, lambda step, logs: last_logs.update(logs)),
            cb.Summaries(writer, loss_log, c.VAL_PSTEPS, max_iters, self._element, c.SEED,
                         c.VIZ_MAX_OUT, self.static_view()),
        ]
        evaluation = self._evaluation(writer, start, max_iters)
        if evaluation is not None:  # after the summaries, before the checkpoint
            run_callbacks.append(evaluation)
        run_callbacks += [cb.Every(c.TRAIN_SPE, lambda step, logs: self.save(), max_iters),
                          self._signal_stop]
        if progress:
            run_callbacks.append(cb.ProgressBar(max_iters, start))
        return run_callbacks

    # ------------------------------------------------------------------ loop
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
        max_iters = int(max_iters or self.config.MAX_ITERS)
        self.stopped_by = None
        for t in self.model.metrics:  # a NaN from an earlier fit() must not linger
            t.reset_state()
        agree = None
        if self.role.num_workers > 1:
            def agree(start):
                check_same_step(self.strategy, start, self.role, self.checkpoint_dir)
        start = self.state.begin(agree)
        loss_log = StepLog(self.log_dir / "losses.jsonl", start, "losses")
        writer = tf.summary.create_file_writer(str(self.log_dir))
        last_logs: dict = {}
        run_callbacks = self._callbacks(writer, loss_log, start, max_iters, last_logs,
                                        progress)
        t0, cpu0 = time.time(), time.process_time()
        try:
            self._run(start, max_iters, run_callbacks + list(callbacks))
        except PEER_ERRORS as e:
            if self.role.num_workers == 1:
                raise
            raise WorkerLostError(lost_worker_message(e, self.role, self.step,
                                                      self.checkpoint_dir)) from None
        except KeyboardInterrupt:  # outside the main thread: no signal handler there
            log.warning("interrupted at step %d: saving a checkpoint", self.step)
            self.state.save_if_new()
            raise
        finally:
            self._signal_stop.restore_handlers()
            writer.close()
            for callback in run_callbacks:  # the progress bar, eval.csv
                if hasattr(callback, "close"):
                    callback.close()
            loss_log.close()
            if not self.role.is_chief:  # this worker's temporary log folder
                shutil.rmtree(self.log_dir, ignore_errors=True)
        # CPU time too: what a run costs on a shared machine (its CPU-hours).
        log.info("stopped at step %d after %.1f s (%.2f CPU-hours)", self.step, time.time() - t0,
                 (time.process_time() - cpu0) / 3600)
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
