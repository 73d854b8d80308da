"""Keras callbacks that make ``model.fit`` a PiiGAN training run.

``Trainer.fit`` is ``model.fit(dataset, callbacks=[...])`` with these (and any
of the user's own). Each iteration is one Keras batch; ``global_step(model)``
(the generator optimizer's step counter, which checkpoints restore) is the
run's step, so a callback's schedule survives resume.

* :class:`NonFiniteLossGuard`: stops on a NaN/Inf loss, naming it and the step.
* :class:`Every`: calls a function every N steps and at the last one
  (summaries, evaluation, checkpoints).
* :class:`SignalStop`: SIGTERM/SIGINT ends training after the current step.
* :class:`ProgressBar`: a tqdm bar over the run's steps.
"""

from __future__ import annotations

import logging
import math
import signal
from typing import Callable

import keras

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
