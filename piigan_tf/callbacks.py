"""Keras callbacks that make ``model.fit`` a PiiGAN training run.

``Trainer.fit`` is ``model.fit(dataset, callbacks=[...])`` with these (and any
of the user's own). Each iteration is one Keras batch; ``global_step(model)``
(the generator optimizer's step counter, which checkpoints restore) is the
run's step, so a callback's schedule survives resume.

* :class:`NonFiniteLossGuard`: stops on a NaN/Inf loss, naming it and the step.
* :class:`Every`: calls a function every N steps and at the last one
  (checkpoints).
* :class:`Summaries`: every VAL_PSTEPS, the losses (TensorBoard and
  ``losses.jsonl``) and image grids of the step and the static view.
* :class:`PeriodicEvaluation`: every EVAL_STEPS (and at step 0), scores on a
  fixed validation subset (TensorBoard and ``eval.csv``).
* :class:`SignalStop`: SIGTERM/SIGINT ends training after the current step.
* :class:`ProgressBar`: a tqdm bar over the run's steps.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from typing import Callable

import keras
import tensorflow as tf

from piigan_tf.utils import image_grid

log = logging.getLogger("piigan_tf")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; no checkpoint was written for that step."""


def global_step(model) -> int:
    """Generator steps done (= reference iterations): ``model.g_optimizer.iterations``."""
    return int(model.g_optimizer.iterations.numpy())


def as_floats(logs) -> dict[str, float]:
    """A step's logs as Python floats (tensors, numpy values or floats)."""
    return {k: float(v) for k, v in (logs or {}).items()}


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Raises :class:`TrainingDiverged` when a logged loss is NaN or infinite.

    Put it first among the callbacks: nothing is logged or saved for that step.

    Args:
        last_good: returns the checkpoint a rerun would resume from (named
            in the message), or None.
    """

    def __init__(self, last_good: Callable[[], str | None] = lambda: None):
        super().__init__()
        self.last_good = last_good

    def on_train_batch_end(self, batch, logs=None):
        values = as_floats(logs)
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"loss {bad[0]} became {values[bad[0]]} at step {global_step(self.model)}; "
                f"training stopped, no checkpoint written for it (last good: "
                f"{self.last_good() or 'none'}). Lower the learning rate "
                "(--set LEARNING_RATE=...) or check the data.")


class Every(keras.callbacks.Callback):
    """Calls ``fn(step, logs)`` when the step is a multiple of ``every`` or is ``last``.

    Args:
        every: the period in steps (0 or less: only at ``last``).
        fn: called with the global step and that step's logs as floats.
        last: the run's final step (``max_iters``), or None.
    """

    def __init__(self, every: int, fn: Callable[[int, dict], None], last: int | None = None):
        super().__init__()
        self.every = int(every)
        self.fn = fn
        self.last = last

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if (self.every > 0 and step % self.every == 0) or step == self.last:
            self.fn(step, as_floats(logs))


class Summaries(Every):
    """Every ``every`` steps (and the last): the losses and image grids of the run so far.

    Writes the mean of each loss since the previous summary as TensorBoard
    scalars (``losses/critic/*``, ``losses/generator/*``) and as a line of
    ``losses.jsonl``, then resets the model's loss trackers; draws the step's
    generator batch (real | incomplete | completed | x2 | x1) and, if given,
    the static view completed with fixed noise.

    Args:
        writer: the TensorBoard summary writer.
        loss_log: the run's ``losses.jsonl`` (a ``run_logs.StepLog``).
        every, last: as :class:`Every` (VAL_PSTEPS, max_iters).
        element_at: ``element_at(i)``: element ``i`` of the training stream
            (the stream is a function of the step, so the batch a step saw is
            rebuilt rather than kept).
        seed: SEED; the grids' noise is drawn from ``(seed, step)``, apart
            from the training noise, so summaries do not change training.
        max_images: VIZ_MAX_OUT, images per grid.
        static: ``{"images", "masks"}`` of the static view, or None.
    """

    def __init__(self, writer, loss_log, every: int, last: int | None,
                 element_at: Callable[[int], dict], seed: int, max_images: int,
                 static: dict | None = None):
        super().__init__(every, self._write, last)
        self.writer, self.loss_log, self.static = writer, loss_log, static
        self.element_at, self.seed, self.max_images = element_at, seed, max_images

    def _write(self, step: int, logs: dict) -> None:
        model, n = self.model, self.max_images
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                group = "critic" if name.startswith(("d_", "gp_")) else "generator"
                tf.summary.scalar(f"losses/{group}/{name}", value)
            # The batch this step's generator update saw: element step - 1.
            element = self.element_at(step - 1)
            images, masks = element["images"][-1][:n], element["masks"][-1][:n]
            z = tf.random.stateless_normal(tf.shape(masks), seed=[self.seed, step])
            viz = model.visualize(images, masks, z=z)
            tf.summary.image("train/real|incomplete|completed|x2|x1", image_grid(viz),
                             max_outputs=n)
            if self.static is not None:
                images, masks = self.static["images"], self.static["masks"]
                completed = model.complete_fixed(images, masks, seed=self.seed)
                tf.summary.image("static_view/real|incomplete|completed",
                                 image_grid([images, images * (1 - masks), completed]),
                                 max_outputs=len(images))
        self.writer.flush()
        self.loss_log.write(step, logs)
        for tracker in model.metrics:  # the next line averages the steps after this one
            tracker.reset_state()


class PeriodicEvaluation(Every):
    """Every ``every`` steps (and the last; at step 0 too on a new run): scores the generator.

    Each evaluation is a row of ``eval.csv`` and ``eval/*`` TensorBoard scalars.

    Args:
        evaluator: ``evaluator(generator) -> {column: value}``
            (a ``periodic_evaluation.PeriodicEvaluator``).
        eval_log: the run's ``eval.csv`` (a ``run_logs.StepLog``).
        writer: the TensorBoard summary writer.
        every, last: as :class:`Every` (EVAL_STEPS, max_iters).
    """

    def __init__(self, evaluator, eval_log, writer, every: int, last: int | None):
        super().__init__(every, lambda step, logs: self.evaluate(step), last)
        self.evaluator, self.eval_log, self.writer = evaluator, eval_log, writer

    def on_train_begin(self, logs=None):
        if global_step(self.model) == 0:  # the untrained model: step 0
            self.evaluate(0)

    def close(self) -> None:
        self.eval_log.close()

    def evaluate(self, step: int) -> dict:
        """Scores the generator now; writes a row of eval.csv and ``eval/*`` scalars."""
        t0 = time.perf_counter()
        scores = self.evaluator(self.model.generator)
        self.eval_log.write(step, scores)
        with self.writer.as_default(step=step):
            for name, value in scores.items():
                tf.summary.scalar(f"eval/{name}", value)
        self.writer.flush()
        log.info("step %d: hole PSNR %.2f dB (best of %d %.2f), hole SSIM %.4f, hole L1 %.4f, "
                 "diversity %.4f; Telea %.2f dB (%.1f s)", step, scores["psnr_hole"],
                 self.evaluator.num_samples, scores["best_psnr_hole"], scores["ssim_hole"],
                 scores["l1_hole"], scores["diversity_l1"], scores["telea_psnr_hole"],
                 time.perf_counter() - t0)
        return scores


class SignalStop(keras.callbacks.Callback):
    """SIGTERM or SIGINT (Ctrl-C) ends training after the step in progress.

    The handler only records the signal; at the end of the step ``on_stop``
    is called with its name (e.g. to write a checkpoint) and
    ``model.stop_training`` is set. The previous handlers come back when
    training ends. Outside the main thread no handler can be installed and
    signals keep their default behaviour.

    Args:
        on_stop: called with ``"SIGTERM"`` or ``"SIGINT"``.
        handler: the function installed as the signal handler (default: this
            callback's own); it must call :meth:`request_stop`.
    """

    def __init__(self, on_stop: Callable[[str], None], handler=None):
        super().__init__()
        self.on_stop = on_stop
        self.handler = handler or (lambda signum, frame: self.request_stop(signum))
        self.received: int | None = None
        self._old = {}

    def request_stop(self, signum: int) -> None:
        self.received = signum

    def on_train_begin(self, logs=None):
        self.received = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self.handler)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            name = signal.Signals(self.received).name
            log.warning("%s received at step %d: saving a checkpoint and stopping", name,
                        global_step(self.model))
            self.on_stop(name)
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.restore_handlers()

    def restore_handlers(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar from the run's first step to ``total``, with the main losses."""

    KEYS = ("d_loss", "g_loss", "ae", "kl")

    def __init__(self, total: int, initial: int = 0, desc: str = "train"):
        super().__init__()
        self.total, self.initial, self.desc = total, initial, desc
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=self.initial, unit="it", dynamic_ncols=True,
                        desc=self.desc)

    def on_train_batch_end(self, batch, logs=None):
        values = as_floats(logs)
        self.bar.update(1)
        self.bar.set_postfix({k: f"{values[k]:.3g}" for k in self.KEYS if k in values})

    def on_train_end(self, logs=None):
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
