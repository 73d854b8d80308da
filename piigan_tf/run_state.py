"""A training run's state between processes: resume, start fresh, warm start, save.

:class:`RunState` holds the rules around a run's checkpoint folder (kept by a
:class:`piigan_tf.checkpoints.CheckpointStore`): which checkpoint to resume
from and whether its configuration fits, the configured learning rate winning
over the restored one, a fresh run's removal of the old checkpoints, a warm
start of the generator from another model, and a save that refuses NaN
weights. Under a multi-worker strategy only the chief writes the folder; the
other workers restore the chief's checkpoints and save to temporary folders.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from piigan_tf.callbacks import TrainingDiverged, global_step
from piigan_tf.checkpoints import (CheckpointReadError, CheckpointStore, CheckpointWriteError,
                                   error_text)
from piigan_tf.config import Config
from piigan_tf.distribute import PEER_ERRORS, WorkerRole, save_worker_copy

log = logging.getLogger("piigan_tf")

__all__ = ["ConfigMismatchError", "RunState"]

# Keys that change variable shapes or the data stream: a run resumed with
# different values would not restore (or would silently change the data).
_RESUME_KEYS = ("IMG_SHAPES", "HEIGHT", "WIDTH", "EXTRACTOR_ACTIVATION", "D_STEPS")


class ConfigMismatchError(ValueError):
    """A checkpoint directory holds a run with an incompatible configuration."""


class RunState:
    """A model's run in a checkpoint folder.

    Args:
        model: the compiled ``PiiGAN`` (its weights and both optimizers are saved).
        config: the run's ``Config`` (written as ``config.yml`` beside the
            checkpoints; its learning rate wins over a restored one).
        directory: the checkpoint folder.
        role: this process's ``WorkerRole`` (single process: the chief).
        resume: restore the latest checkpoint on :meth:`begin`; with False the
            first :meth:`begin` removes the folder's checkpoint files instead.
        init_from: a model folder or checkpoint whose generator a fresh run
            starts from (see :meth:`warm_start`).
    """

    def __init__(self, model, config: Config, directory: str | os.PathLike,
                 role: WorkerRole | None = None, resume: bool = True,
                 init_from: str | None = None):
        self.model = model
        self.config = config
        self.role = role or WorkerRole()
        self.resume = resume
        self.init_from = init_from
        self.store = CheckpointStore(directory, max_to_keep=3, model=model,
                                     g_optimizer=model.g_optimizer,
                                     d_optimizer=model.d_optimizer)
        #: The step of the last checkpoint written or restored (None: none yet).
        self.saved_step: int | None = None

    @property
    def directory(self) -> Path:
        return self.store.directory

    @property
    def step(self) -> int:
        """Generator steps done (= reference iterations)."""
        return global_step(self.model)

    # ------------------------------------------------------------ start
    def begin(self, agree: Callable[[int], None] | None = None) -> int:
        """Resumes (or starts fresh, or warm-starts) and checks the folder is writable.

        Args:
            agree: called with the start step before anything is written
                (the workers of a multi-worker run check they agree on it).

        Returns:
            The step the run starts at.

        Raises:
            ConfigMismatchError, CheckpointReadError: as :meth:`restore`.
            CheckpointWriteError: the folder cannot be written (said now, not
                after hours of training).
        """
        start = self.restore()
        if self.init_from and start == 0 and self.step == 0:
            self.warm_start()
        elif self.init_from:
            log.info("resuming %s at step %d: --init_from %s applies to fresh runs only",
                     self.directory, start, self.init_from)
        if agree is not None:
            agree(start)
        try:
            if self.role.is_chief:
                self.write_config()
        except OSError as e:
            raise CheckpointWriteError(
                f"cannot write to the checkpoint folder {self.directory}: "
                f"{error_text(e)}. Pass a writable --checkpoint_dir.") from e
        self.saved_step = start
        return start

    def restore(self) -> int:
        """Restores the latest complete checkpoint, if any. Returns the step.

        A checkpoint that cannot be read (truncated, corrupt, NaN weights) is
        skipped with a warning in favour of the next older one. A state made
        with ``resume=False`` starts fresh instead: the folder's checkpoint
        files are removed (by the chief), and later calls resume.

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
        self.check_config_compatible()
        path = self.store.restore(check=self._check_finite)
        if path is None:
            return 0
        log.info("resumed from %s at step %d", path, self.step)
        self._apply_configured_learning_rate()
        return self.step

    def check_config_compatible(self) -> None:
        """Raises ConfigMismatchError if the folder's config.yml cannot resume as configured.

        A run of another DATASET may be resumed (fine-tuning), with a warning.
        """
        saved = self.directory / "config.yml"
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
                        self.directory, old.get("DATASET"), self.config.DATASET)
        if diffs:
            raise ConfigMismatchError(
                f"{self.directory} holds a run with a different configuration ("
                + "; ".join(diffs) + "). Pass another --checkpoint_dir, or --fresh to "
                "start over in this folder.")

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

    def warm_start(self) -> str:
        """Sets the generator's weights from ``init_from``. Returns the source file.

        ``init_from`` is a shipped model folder (``pretrained/celeba64``) or a
        training checkpoint folder; the extractor, the critics and both
        optimizers start new. The generator is fully convolutional, so the
        image size may differ from the source model's.

        Raises:
            CheckpointReadError: the source is missing, unreadable, or its
                generator does not fit this one (one line naming it).
        """
        from piigan_tf.loading import load_generator

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

    # ------------------------------------------------------------ save
    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config.dump(self.directory / "config.yml")

    def first_non_finite(self) -> str | None:
        """Name of the first NaN/Inf weight or optimizer variable, or None."""
        variables = (list(self.model.weights) + list(self.model.g_optimizer.variables)
                     + list(self.model.d_optimizer.variables))
        for v in variables:
            if tf.as_dtype(v.dtype).is_floating and \
                    not bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))):
                return getattr(v, "path", None) or v.name
        return None

    def _check_finite(self) -> None:
        bad = self.first_non_finite()
        if bad:
            raise ValueError(f"variable {bad} is NaN/Inf")

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
        bad = self.first_non_finite()
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
                prepare=self.write_config)
            log.info("saved checkpoint %s", path)
        self.saved_step = step
        return path

    def save_if_new(self) -> None:
        """Saves unless the current step's checkpoint is already written."""
        if self.saved_step != self.step:
            self.save()
