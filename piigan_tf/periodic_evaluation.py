"""Evaluation during training: a fixed validation subset scored every EVAL_STEPS.

Every ``EVAL_STEPS`` iterations the :class:`~piigan_tf.training.Trainer`
completes the same ``EVAL_IMAGES`` validation images, with the reference
test's centre hole and the same noise each time (seed ``SEED``, the rule of
:func:`piigan_tf.evaluation.evaluate`), ``EVAL_SAMPLES`` times each, and
scores them with :func:`piigan_tf.evaluation.score_completions`. OpenCV's
baselines (Telea, Navier–Stokes and, with contrib OpenCV, FSR) are scored once, on the same images and
holes. Each evaluation is one row of ``<log_dir>/eval.csv`` (a
:class:`piigan_tf.run_logs.StepLog`; and TensorBoard
scalars under ``eval/``)::

    step,psnr_hole,best_psnr_hole,ssim_hole,l1_hole,diversity_l1,psnr,best_psnr,ssim,
    texture_ratio,swd,colour_offset_hole,seam,telea_psnr_hole,...,fsr_seam,swd_noise_floor,truth_seam

(A run resumed by a version with more columns widens the file: earlier rows
read ``nan`` there.)

``python -m piigan_tf.cli.learning_curve <log_dir>/eval.csv`` draws it.
"""

from __future__ import annotations

import logging
from typing import Sequence

from piigan_tf import evaluation as E

log = logging.getLogger("piigan_tf")

#: Columns of eval.csv for the model (and, prefixed ``telea_``/``navier_stokes_``,
#: for each baseline; a baseline's best-of-N and diversity are its single
#: completion's PSNR and 0, so they are left out).
MODEL_COLUMNS = ("psnr_hole", "best_psnr_hole", "ssim_hole", "l1_hole", "diversity_l1", "psnr",
                 "best_psnr", "ssim", "texture_ratio", "swd", "colour_offset_hole", "seam")
BASELINE_COLUMNS = ("psnr_hole", "ssim_hole", "l1_hole", "psnr", "ssim", "texture_ratio", "swd",
                    "colour_offset_hole", "seam")


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
        from piigan_tf.data.preprocess import model_crop

        self.names, self.images = E.load_eval_images(
            files, config.img_hw, model_crop(config), self.seed, config.EVAL_IMAGES)
        self.masks = E.make_eval_masks(len(self.images), config.img_hw, config.box_hw, "center")
        baselines = E.evaluate(None, self.images, self.masks, self.names, perceptual=False,
                               progress=False)
        #: ``{column: value}`` of the baselines, computed once.
        self.baseline_scores = {f"{method}_{key}": baselines.means[method][key]
                                for method in baselines.methods for key in BASELINE_COLUMNS}
        self.baseline_scores["swd_noise_floor"] = baselines.swd_noise_floor
        self.baseline_scores["truth_seam"] = baselines.truth_seam

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
