"""The training loop: data, model, checkpoints, TensorBoard, resume, interrupts.

``Trainer(config).fit()`` is what ``train.py`` runs. It is a plain loop over
``model.train_step`` (compiled with ``tf.function``) rather than
``model.fit``, so that the step counter, checkpoints every ``TRAIN_SPE``
steps, exact resume (weights, both optimizers, noise generator and data
iterator position) and interrupt handling are all under its control.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from piigan_tf.config import Config
from piigan_tf.data import build_dataset, read_flist, resolve_dataset, scan_files
from piigan_tf.model import PiiGAN, default_optimizer
from piigan_tf.utils import image_grid

log = logging.getLogger("piigan_tf")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; no checkpoint was written for that step."""


class ConfigMismatchError(ValueError):
    """A checkpoint directory holds a run with an incompatible configuration."""


# Keys that change variable shapes or the data stream: a run resumed with
# different values would not restore (or would silently change the data).
_RESUME_KEYS = ("IMG_SHAPES", "HEIGHT", "WIDTH", "EXTRACTOR_ACTIVATION", "D_STEPS")


def dataset_name(dataset: str) -> str:
    """Short name of a dataset option, used for the checkpoint and log folders."""
    p = Path(dataset)
    if p.suffix == ".flist":
        return p.parent.name or p.stem
    return p.name if os.sep in dataset or p.exists() else dataset


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
    """

    def __init__(self, config: Config, checkpoint_dir: str | None = None,
                 log_dir: str | None = None, resume: bool = True, jit_compile: bool = False,
                 strategy: tf.distribute.Strategy | None = None):
        self.config = config
        name = dataset_name(config.DATASET)
        self.checkpoint_dir = Path(checkpoint_dir or config.MODEL_RESTORE
                                   or Path(config.CHECKPOINT_DIR) / name)
        self.log_dir = Path(log_dir or Path(config.LOG_DIR) / name)
        self.resume = resume
        self.jit_compile = jit_compile
        self.strategy = strategy or tf.distribute.get_strategy()
        self._stop_signal = None

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

        with self.strategy.scope():
            self.model = PiiGAN.from_config_object(config)
            self.model.compile(
                g_optimizer=default_optimizer("g_optimizer", config.LEARNING_RATE,
                                              config.BETA_1, config.BETA_2),
                d_optimizer=default_optimizer("d_optimizer", config.LEARNING_RATE,
                                              config.BETA_1, config.BETA_2))
        if not resume and self.checkpoint_dir.exists():
            shutil.rmtree(self.checkpoint_dir)
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, g_optimizer=self.model.g_optimizer,
            d_optimizer=self.model.d_optimizer, noise_seed=self.model.seed_generator.state)
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
        return ds

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
        if diffs:
            raise ConfigMismatchError(
                f"{self.checkpoint_dir} holds a run with a different configuration ("
                + "; ".join(diffs) + "). Pass another --checkpoint_dir, or --fresh to "
                "start over in this folder.")

    def restore(self) -> int:
        """Restores the latest complete checkpoint, if any. Returns the step."""
        latest = self.manager.latest_checkpoint
        if not (self.resume and latest):
            return 0
        self._check_config_compatible()
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        log.info("resumed from %s at step %d", latest, self.step)
        return self.step

    def save(self) -> str:
        """Writes a checkpoint for the current step (atomic: the index is updated last)."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.config.dump(self.checkpoint_dir / "config.yml")
        path = self.manager.save(checkpoint_number=self.step)
        log.info("saved checkpoint %s", path)
        return path

    # ------------------------------------------------------------------ loop
    def _compiled_step(self):
        if self._train_fn is None:
            model, strategy = self.model, self.strategy

            def step(data):
                return strategy.run(model.train_step, args=(data,))

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
            images, masks = data["images"][-1][:n], data["masks"][-1][:n]
            viz = self.model.visualize(images, masks)
            tf.summary.image("train/real|incomplete|completed|x2|x1",
                             image_grid(viz), max_outputs=n)
            if static is not None:
                completed = self.model.complete_fixed(static["images"], static["masks"],
                                                      seed=c.SEED)
                tf.summary.image("static_view/real|incomplete|completed", image_grid(
                    [static["images"], static["images"] * (1 - static["masks"]), completed]),
                    max_outputs=len(static["images"]))
        writer.flush()

    def fit(self, max_iters: int | None = None, progress: bool = True) -> dict:
        """Trains until ``max_iters`` generator steps (default MAX_ITERS).

        Checkpoints every TRAIN_SPE steps, at the end, and on Ctrl-C / SIGTERM.
        Returns the last logged losses.

        Raises:
            TrainingDiverged: a loss became NaN/Inf (nothing is saved for it).
        """
        from tqdm.auto import tqdm

        c = self.config
        max_iters = int(max_iters or c.MAX_ITERS)
        start = self.restore()
        self.config.dump(self.checkpoint_dir / "config.yml")
        writer = tf.summary.create_file_writer(str(self.log_dir))
        static = self.static_view()
        train_fn = self._compiled_step()
        iterator = iter(self.train_dataset(start))
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
                data = next(iterator)
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
                    for t in self.model.metrics:
                        t.reset_state()
                if step % c.TRAIN_SPE == 0 or step == max_iters:
                    self.save()
                    last_saved = step
                if self._stop_signal is not None:
                    name = signal.Signals(self._stop_signal).name
                    log.warning("%s received at step %d: saving a checkpoint and stopping",
                                name, step)
                    if last_saved != step:
                        self.save()
                    break
        except KeyboardInterrupt:
            log.warning("interrupted at step %d: saving a checkpoint", self.step)
            if self.step != last_saved:
                self.save()
            raise
        finally:
            bar.close()
            writer.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
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
    """Seeds Python, NumPy and TF; optionally turns on deterministic TF ops."""
    import keras

    keras.utils.set_random_seed(seed)  # Python, NumPy, TF and Keras initialisers
    if deterministic:
        tf.config.experimental.enable_op_determinism()
