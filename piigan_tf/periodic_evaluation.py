"""Evaluation during training: a fixed validation subset scored every EVAL_STEPS.

Every ``EVAL_STEPS`` iterations the :class:`~piigan_tf.training.Trainer`
completes the same ``EVAL_IMAGES`` validation images, with the reference
test's centre hole and the same noise each time (seed ``SEED``, the rule of
:func:`piigan_tf.evaluation.evaluate`), ``EVAL_SAMPLES`` times each, and
scores them with :func:`piigan_tf.evaluation.score_completions`. OpenCV's
baselines (Telea, Navier–Stokes and, with contrib OpenCV, FSR) are scored once, on the same images and
holes. Each evaluation is one row of ``<log_dir>/eval.csv`` (and TensorBoard
scalars under ``eval/``)::

    step,psnr_hole,best_psnr_hole,ssim_hole,l1_hole,diversity_l1,psnr,best_psnr,ssim,
    texture_ratio,swd,telea_psnr_hole,...,fsr_swd,swd_noise_floor

``python -m piigan_tf.learning_curve <log_dir>/eval.csv`` draws it.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from piigan_tf import evaluation as E

log = logging.getLogger("piigan_tf")

#: Columns of eval.csv for the model (and, prefixed ``telea_``/``navier_stokes_``,
#: for each baseline; a baseline's best-of-N and diversity are its single
#: completion's PSNR and 0, so they are left out).
MODEL_COLUMNS = ("psnr_hole", "best_psnr_hole", "ssim_hole", "l1_hole", "diversity_l1", "psnr",
                 "best_psnr", "ssim", "texture_ratio", "swd")
BASELINE_COLUMNS = ("psnr_hole", "ssim_hole", "l1_hole", "psnr", "ssim", "texture_ratio", "swd")


class PeriodicEvaluator:
    """Scores a generator on a fixed validation subset.

    Args:
        config: the training ``Config`` (sizes, preprocessing, EVAL_* keys, SEED).
        files: validation image paths; the first ``EVAL_IMAGES`` readable ones are used.
        batch_size: images per generator pass.

    Raises:
        ValueError: none of ``files`` can be read.
    """

    def __init__(self, config, files: Sequence[str], batch_size: int = 5):
        self.config = config
        self.num_samples = int(config.EVAL_SAMPLES)
        self.seed = int(config.SEED)
        self.batch_size = batch_size
        self._inpainter = None  # traced once, reused while the generator is the same
        self.names, self.images = E.load_eval_images(
            files, config.img_hw, E.model_crop(config), self.seed, config.EVAL_IMAGES)
        self.masks = E.make_eval_masks(len(self.images), config.img_hw, config.box_hw, "center")
        baselines = E.evaluate(None, self.images, self.masks, self.names, perceptual=False,
                               progress=False)
        #: ``{column: value}`` of the baselines, computed once.
        self.baseline_scores = {f"{method}_{key}": baselines.means[method][key]
                                for method in baselines.methods for key in BASELINE_COLUMNS}
        self.baseline_scores["swd_noise_floor"] = baselines.swd_noise_floor

    def __call__(self, generator) -> dict[str, float]:
        """``{column: value}`` for ``generator`` (its current weights) and the baselines."""
        from piigan_tf.inference import Inpainter

        if self._inpainter is None or self._inpainter.module.generator is not generator:
            self._inpainter = Inpainter.from_generator(generator, config=self.config)
        result = E.evaluate(self._inpainter, self.images, self.masks, self.names,
                            num_samples=self.num_samples, seed=self.seed,
                            batch_size=self.batch_size, baselines=(), perceptual=False,
                            progress=False)
        scores = {key: result.means[E.MODEL_KEY][key] for key in MODEL_COLUMNS}
        return {**scores, **self.baseline_scores}


class EvalLog:
    """``eval.csv``: one row per evaluation, safe under kills and resume.

    Opening it for a run resumed at ``start`` keeps the complete rows with
    ``step <= start`` (rewritten atomically); rows are then appended and
    flushed one by one. A write error is logged once and logging stops.
    """

    def __init__(self, path: str | os.PathLike, start: int):
        self.path = Path(path)
        self._file = None
        self._writer = None
        self._columns: list[str] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            kept = [row for row in read_eval_log(self.path) if row["step"] <= start] \
                if start > 0 and self.path.exists() else []
            if kept:
                self._columns = list(kept[0])
                write_eval_log(kept, self.path)
            else:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text("", encoding="utf-8")
                tmp.replace(self.path)
            self._file = open(self.path, "a", newline="", encoding="utf-8")
        except OSError as e:
            log.warning("cannot write %s (%s); evaluations go to TensorBoard only", self.path, e)
            self.close()

    def write(self, step: int, scores: dict[str, float]) -> None:
        if self._file is None:
            return
        row = {"step": int(step), **scores}
        try:
            if self._writer is None:
                if self._columns is None:
                    self._columns = list(row)
                self._writer = csv.DictWriter(self._file, self._columns, extrasaction="ignore")
                if self._file.tell() == 0:
                    self._writer.writeheader()
            self._writer.writerow({k: _cell(v) for k, v in row.items()})
            self._file.flush()
        except OSError as e:
            log.warning("cannot write %s (%s); evaluations go to TensorBoard only", self.path, e)
            self.close()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        self._file = self._writer = None


def _cell(value) -> str:
    return str(int(value)) if isinstance(value, (int, np.integer)) else repr(float(value))


def write_eval_log(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Writes rows as :func:`read_eval_log` reads them (atomically). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0]) if rows else ["step"]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({k: _cell(row[k]) for k in columns} for row in rows)
    tmp.replace(path)
    return path


def read_eval_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of an ``eval.csv`` as ``{column: number}`` (``step`` an int).

    A row cut short by a kill (missing or unparsable cells) is skipped.
    """
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            try:
                row = {k: float(v) for k, v in raw.items() if k is not None}
                if any(v is None for v in raw.values()) or not math.isfinite(row["step"]):
                    continue
            except (TypeError, ValueError, KeyError):
                continue
            row["step"] = int(row["step"])
            rows.append(row)
    return rows
