"""Evaluation runs: PiiGAN samples and classical baselines, scored and reported.

One run takes a set of validation images, draws one mask per image from a
seeded generator (or reads mask files), and completes every image

* ``num_samples`` times with PiiGAN (one batched pass per group of images), and
* once each with OpenCV's Telea and Navier–Stokes inpainting (the classical
  baselines: deterministic, so their diversity is 0),

then scores every completion against the ground truth with
:mod:`piigan_tf.metrics` and writes a report. Python use::

    from piigan_tf.evaluation import evaluate_files, write_report
    from piigan_tf.inference import Inpainter

    inpainter = Inpainter.from_checkpoint("checkpoints/celeba_real")
    result = evaluate_files(inpainter, "data/celeba_real/val.flist", num_samples=10,
                            max_images=100, seed=0)
    paths = write_report(result, "eval/celeba_real")
    print(result.table())

Per-image figures are means over an image's samples, except best-of-N (the
best sample) and the diversities (over pairs of samples). Reported figures
are means over images (NaNs, i.e. empty holes, left out); FID is a set-level
figure computed on the first sample of every image, so every method is
scored on as many images as the ground truth set.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from piigan_tf import metrics as M

log = logging.getLogger("piigan_tf")

#: PSNR of identical images is infinite; per-image values are capped here
#: before averaging. The largest finite PSNR of uint8 images with n values is
#: 10 log10(255² n): 95 dB for 128×128×3, so the cap only ever replaces +inf
#: for images of up to ~1.5e5 values (~220×220 RGB).
PSNR_CAP_DB = 100.0

#: Masks an evaluation can draw: ``center`` is the reference test's mask (a
#: HEIGHT × WIDTH hole at the centre, no jitter); the others are the training
#: mask types of :func:`piigan_tf.data.masks.make_masks`.
EVAL_MASK_TYPES = ("center", "box", "random_box", "free_form")
#: How evaluation cuts model-sized images from files: the crops of
#: :data:`piigan_tf.data.preprocess.CROPS`, or ``grid`` (several windows an image).
EVAL_CROPS = ("resize", "center", "random", "grid")

#: OpenCV inpainting baselines: name → (label, flag name). ``fsr`` is
#: Frequency Selective Reconstruction (Genser et al. 2018) from OpenCV's
#: contrib module ``cv2.xphoto`` (opencv-contrib-python-headless), the fast
#: variant; it is left out, with a note, where contrib OpenCV is absent.
BASELINES = {"telea": ("OpenCV Telea", "INPAINT_TELEA"),
             "navier_stokes": ("OpenCV Navier-Stokes", "INPAINT_NS"),
             "fsr": ("OpenCV FSR (fast)", "INPAINT_FSR_FAST")}
BASELINE_RADIUS = 3  # inpaintRadius of Telea and Navier-Stokes, as in OpenCV's tutorial
#: Why a baseline cannot run here (absent when it can).
FSR_MISSING = ("FSR skipped: OpenCV's contrib module cv2.xphoto is not installed "
               "(pip install opencv-contrib-python-headless, which replaces opencv-python-headless)")


def baseline_available(method: str) -> bool:
    """Whether this OpenCV build has the baseline (FSR needs contrib's ``cv2.xphoto``)."""
    import cv2

    if method == "fsr":
        return hasattr(getattr(cv2, "xphoto", None), "inpaint")
    return method in BASELINES


def available_baselines(methods: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """The baselines of ``methods`` (default: all) that run here, and notes on those that don't."""
    methods = list(BASELINES) if methods is None else list(methods)
    keep = [m for m in methods if baseline_available(m)]
    notes = [FSR_MISSING] if "fsr" in methods and "fsr" not in keep else []
    return keep, notes

MODEL_KEY = "piigan"


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """How a metric is shown: table label, better direction, number format."""

    key: str
    label: str
    better: str  # "higher", "lower", or "closer to ground truth"
    fmt: str = "{:.4f}"


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("psnr", "PSNR (dB)", "higher", "{:.2f}"),
    MetricInfo("ssim", "SSIM", "higher"),
    MetricInfo("psnr_hole", "PSNR hole (dB)", "higher", "{:.2f}"),
    MetricInfo("ssim_hole", "SSIM hole box", "higher"),
    MetricInfo("l1_hole", "L1 hole", "lower"),
    MetricInfo("colour_offset_hole", "colour offset: hole's mean RGB to truth's", "lower"),
    MetricInfo("tv_hole", "TV hole", "closer to ground truth"),
    MetricInfo("texture_ratio", "texture ratio: TV inside hole / truth's", "closer to 1", "{:.3f}"),
    MetricInfo("swd", "SWD hole patches (x1e3, first sample)", "lower", "{:.1f}"),
    MetricInfo("seam", "seam: step across hole border / steps beside it", "closer to ground truth",
               "{:.3f}"),
    MetricInfo("best_psnr_hole", "best-of-N PSNR hole (dB)", "higher", "{:.2f}"),
    MetricInfo("best_psnr", "best-of-N PSNR (dB)", "higher", "{:.2f}"),
    MetricInfo("best_ssim", "best-of-N SSIM", "higher"),
    MetricInfo("diversity_l1", "diversity: pairwise L1 hole", "higher (pluralism)"),
    MetricInfo("lpips", "LPIPS-VGG16 (uniform) to truth", "lower"),
    MetricInfo("lpips_diversity", "diversity: pairwise LPIPS-VGG16", "higher (pluralism)"),
    MetricInfo("fid", "FID (first sample)", "lower", "{:.2f}"),
)
METRIC_INFO = {m.key: m for m in METRICS}
#: Metrics that need the ImageNet networks.
PERCEPTUAL_METRICS = ("lpips", "lpips_diversity", "fid")


@dataclasses.dataclass
class EvaluationResult:
    """Everything an evaluation run measured.

    Attributes:
        methods: Method keys in report order (``"piigan"`` first, if any).
        labels: Method key → display name.
        per_image: One dict per (image, method): ``image``, ``method`` and
            every per-image metric.
        means: Method key → metric key → mean over images (plus ``fid``).
        truth_tv: Mean hole TV of the ground truth (reference for ``tv_hole``).
        settings: What was run (model, step, data, masks, seeds, sizes).
        notes: Human-readable remarks (e.g. why LPIPS/FID were skipped).
        timings: Method key → seconds spent completing (not scoring).
        examples: A few images for the grid: ``images``, ``masks``, and
            ``completions`` (method key → uint8 ``[K, n, H, W, 3]``).
    """

    methods: list[str]
    labels: dict[str, str]
    per_image: list[dict[str, Any]]
    means: dict[str, dict[str, float]]
    truth_tv: float
    settings: dict[str, Any]
    notes: list[str]
    timings: dict[str, float]
    examples: dict[str, Any]
    swd_noise_floor: float = float("nan")
    truth_tv_inside: float = float("nan")
    truth_seam: float = float("nan")

    def metric_keys(self) -> list[str]:
        """Metrics present in this result, in :data:`METRICS` order."""
        present = {k for values in self.means.values() for k in values}
        return [m.key for m in METRICS if m.key in present]

    def table(self) -> str:
        """The means as a markdown table: one row per metric, one column per method."""
        header = ["metric", "better", *(self.labels[m] for m in self.methods), "ground truth"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
        for key in self.metric_keys():
            info = METRIC_INFO[key]
            cells = [info.label, info.better]
            for method in self.methods:
                value = self.means[method].get(key, float("nan"))
                cells.append("—" if value is None or math.isnan(value) else info.fmt.format(value))
            truth = {"tv_hole": self.truth_tv, "texture_ratio": 1.0,
                     "swd": self.swd_noise_floor, "seam": self.truth_seam}.get(key)
            cells.append("—" if truth is None or math.isnan(truth) else info.fmt.format(truth))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def by_difficulty(self, groups: int = 4) -> dict[str, Any] | None:
        """Where each method wins and loses: the images in ``groups`` equal
        groups by the best baseline's hole PSNR (hardest first), with each
        method's mean hole PSNR there, the model's best of N, and the colour
        offsets of the model and of that baseline.

        On textured images the smoothest holes are the ones a classical fill
        gets nearly right, so a mean over all images can hide that a model
        is level with it on the hard ones and far behind on the easy ones (or
        the reverse).

        Returns:
            ``{"reference": method, "groups": [{"count", "low", "high",
            "psnr_hole": {method: mean}, "best_psnr_hole", "colour_offset_hole":
            {method: mean}}]}``, hardest group first; None without a baseline
            or with fewer than two images a group.
        """
        baselines = [m for m in self.methods if m != MODEL_KEY]
        if not baselines or groups < 1:
            return None
        reference = max(baselines, key=lambda m: self.means[m].get("psnr_hole", -math.inf))
        rows = {(r["image"], r["method"]): r for r in self.per_image}
        images = sorted({r["image"] for r in self.per_image},
                        key=lambda i: rows[(i, reference)]["psnr_hole"])
        if len(images) < 2 * groups:
            return None
        found = []
        for part in np.array_split(np.array(images, dtype=object), groups):
            ref = [rows[(i, reference)]["psnr_hole"] for i in part]
            entry = {"count": len(part), "low": float(min(ref)), "high": float(max(ref)),
                     "psnr_hole": {m: _nanmean([rows[(i, m)]["psnr_hole"] for i in part])
                                   for m in self.methods},
                     "colour_offset_hole": {m: _nanmean([rows[(i, m)]["colour_offset_hole"]
                                                         for i in part])
                                            for m in self.methods}}
            if MODEL_KEY in self.methods:
                entry["best_psnr_hole"] = _nanmean([rows[(i, MODEL_KEY)]["best_psnr_hole"]
                                                    for i in part])
            found.append(entry)
        return {"reference": reference, "groups": found}

    def difficulty_table(self, groups: int = 4) -> str:
        """:meth:`by_difficulty` as a markdown table ("" where it is None)."""
        split = self.by_difficulty(groups)
        if split is None:
            return ""
        reference, model = split["reference"], MODEL_KEY in self.methods
        ref_label = self.labels[reference]
        header = [f"images by {ref_label}'s hole PSNR", "images",
                  *(f"{self.labels[m]} PSNR hole" for m in self.methods)]
        if model:
            header += [f"{self.labels[MODEL_KEY]} best of N", f"{self.labels[MODEL_KEY]} colour offset"]
        header.append(f"{ref_label} colour offset")
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        for g, entry in enumerate(split["groups"]):
            name = f"{entry['low']:.1f}–{entry['high']:.1f} dB"
            name += " (hardest)" if g == 0 else " (easiest)" if g == len(split["groups"]) - 1 else ""
            cells = [name, str(entry["count"]),
                     *(f"{entry['psnr_hole'][m]:.2f}" for m in self.methods)]
            if model:
                cells += [f"{entry['best_psnr_hole']:.2f}",
                          f"{entry['colour_offset_hole'][MODEL_KEY]:.4f}"]
            cells.append(f"{entry['colour_offset_hole'][reference]:.4f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


# ------------------------------------------------------------------ inputs
def list_eval_files(data: str | os.PathLike) -> list[str]:
    """Image paths from a file list (``.flist``/``.txt``) or a folder (recursive, sorted).

    Raises:
        FileNotFoundError: ``data`` is neither (the message says what is expected).
        ValueError: it holds no images.
    """
    from piigan_tf.data import list_images, read_flist

    path = Path(data)
    if path.is_dir():
        files = list_images(path)
    elif path.is_file():
        files = read_flist(path)
    else:
        raise FileNotFoundError(f"--data {path}: no such file list or image folder (pass a .flist "
                                "file with one image path per line, or a folder of images)")
    if not files:
        raise ValueError(f"no images in {path}")
    return files


def default_eval_data(config) -> str:
    """The validation list of the dataset a model was trained on (``config.DATASET``)."""
    from piigan_tf.data import resolve_dataset

    return resolve_dataset(config.DATASET, config.DATA_DIR)[1]


def load_eval_images(files: Sequence[str], img_hw: Sequence[int], crop: str = "center",
                     seed: int = 0, max_images: int | None = None, windows_per_side: int = 2
                     ) -> tuple[list[str], np.ndarray]:
    """Reads images and cuts an ``img_hw`` window from each.

    Args:
        files: Image paths (unreadable files are skipped with a warning).
        img_hw: ``(H, W)``, the model's IMG_SHAPES.
        crop: ``"resize"`` (the whole image resized to ``img_hw`` exactly as
            the training pipeline resizes with ``RANDOM_CROP: false``),
            ``"center"`` (the centre window at native scale, images smaller
            than ``img_hw`` scaled up first) or ``"random"`` (the training
            RANDOM_CROP, with stateless seed ``[seed, i]`` for file ``i``) or
            ``"grid"`` (``windows_per_side`` squared evenly spread windows at
            native scale from each image: :func:`piigan_tf.data.preprocess.grid_windows`).
        seed: Seed for ``"random"``.
        max_images: Stop after this many source images.
        windows_per_side: Windows a row and a column for ``"grid"``.

    Returns:
        ``(names, images)``: file stems (with ``_y<top>_x<left>`` for grid
        windows) and uint8 ``[B, H, W, 3]``.
    """
    from piigan_tf.data import load_image_file
    from piigan_tf.data.preprocess import bring_to_size, grid_windows

    if crop not in EVAL_CROPS:
        raise ValueError(f"crop must be one of {EVAL_CROPS}, got {crop!r}")
    names, images = [], []
    sources = 0
    for i, path in enumerate(files):
        if max_images is not None and sources >= max_images:
            break
        try:
            image = load_image_file(path)
        except (ValueError, OSError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        sources += 1
        if crop == "grid":
            for (top, left), window in grid_windows(image, img_hw, windows_per_side):
                names.append(f"{Path(path).stem}_y{top}_x{left}")
                images.append(window)
            continue
        image = bring_to_size(image, img_hw, crop, (seed, i))
        names.append(Path(path).stem)
        images.append(image)
    if not images:
        raise ValueError(f"none of the {len(files)} files could be read as an image")
    return names, np.stack(images)


def make_eval_masks(num: int, img_hw: Sequence[int], box_hw: Sequence[int], mask_type: str = "center",
                    seed: int = 0, max_delta_hw: Sequence[int] = (8, 8),
                    margins_hw: Sequence[int] = (0, 0), mask_files: Sequence[str] | None = None
                    ) -> np.ndarray:
    """One mask per image, reproducibly.

    Args:
        num: Number of masks.
        img_hw: Image size.
        box_hw: Hole box (the model's HEIGHT, WIDTH).
        mask_type: One of :data:`EVAL_MASK_TYPES`; ignored with ``mask_files``.
        seed: Mask ``i`` of a random type uses stateless seed ``[seed, 2 i]``,
            so it does not depend on how many images are evaluated.
        max_delta_hw, margins_hw: Jitter and margins (training config).
        mask_files: Mask images (white = hole), used in turn: image ``i``
            gets ``mask_files[i % len(mask_files)]``, resized to ``img_hw``.

    Returns:
        uint8 ``[num, H, W, 1]``, 1 = hole.
    """
    from piigan_tf.data import load_mask_file, make_mask

    if mask_files:
        loaded = [load_mask_file(f, img_hw) for f in mask_files]
        return np.stack([(loaded[i % len(loaded)] > 0.5).astype(np.uint8) for i in range(num)])
    if mask_type not in EVAL_MASK_TYPES:
        raise ValueError(f"mask_type must be one of {EVAL_MASK_TYPES}, got {mask_type!r}")
    masks = [make_mask([seed, 2 * i], img_hw, box_hw, max_delta_hw, margins_hw, mask_type)[0]
             for i in range(num)]
    return np.stack([(m.numpy() > 0.5).astype(np.uint8) for m in masks])


def mask_files_in(folder: str | os.PathLike) -> list[str]:
    """The mask images in a folder (sorted); raises if there are none."""
    from piigan_tf.data import list_images

    files = list_images(folder)
    if not files:
        raise ValueError(f"no mask images (png, jpg, bmp, ...) in {folder}")
    return files


# --------------------------------------------------------------- baselines
def inpaint_opencv(images, masks, method: str = "telea", radius: int = BASELINE_RADIUS) -> np.ndarray:
    """Classical inpainting with OpenCV, one completion per image.

    Args:
        images: uint8 ``[B, H, W, 3]``.
        masks: ``[B, H, W, 1]``, non-zero = hole.
        method: ``"telea"`` (Telea 2004, fast marching), ``"navier_stokes"``
            (Bertalmio et al. 2001) or ``"fsr"`` (Frequency Selective
            Reconstruction, Genser et al. 2018, fast variant; contrib OpenCV).
        radius: Neighbourhood radius in pixels (Telea and Navier–Stokes).

    Raises:
        ValueError: unknown method.
        RuntimeError: ``"fsr"`` without contrib OpenCV (the message says what to install).

    Returns:
        uint8 ``[B, H, W, 3]``; known pixels unchanged.
    """
    import cv2

    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; valid options are {tuple(BASELINES)}")
    if not baseline_available(method):
        raise RuntimeError(FSR_MISSING.replace("FSR skipped", "the FSR baseline needs contrib OpenCV"))
    images = np.asarray(images, np.uint8)
    hole = M.hole_pixels(masks, images.shape)
    out = np.empty_like(images)
    for i, (image, h) in enumerate(zip(images, hole)):
        image = np.ascontiguousarray(image)
        if method == "fsr":
            # xphoto's mask is the opposite of cv2.inpaint's: non-zero = known.
            known = np.where(h[..., 0], 0, 255).astype(np.uint8)
            filled = np.empty_like(image)
            cv2.xphoto.inpaint(image, known, filled, cv2.xphoto.INPAINT_FSR_FAST)
        else:
            filled = cv2.inpaint(image, h[..., 0].astype(np.uint8) * 255, radius,
                                 getattr(cv2, BASELINES[method][1]))
        out[i] = np.where(h, filled, image)
    return out


# ----------------------------------------------------------------- scoring
def score_completions(truth, completions, mask, lpips: M.LPIPSDistance | None = None,
                      truth_features=None) -> dict[str, float]:
    """Per-image figures of one method's completions of one image.

    Args:
        truth: uint8 ``[H, W, 3]``.
        completions: uint8 ``[N, H, W, 3]`` (N = 1 for a baseline).
        mask: ``[H, W, 1]``, non-zero = hole.
        lpips: Optional LPIPS network (adds ``lpips`` and ``lpips_diversity``).
        truth_features: ``lpips.embed(truth)``, to avoid recomputing it per method.

    Returns:
        ``{metric key: value}``: means over the N samples, except best-of-N
        (the best sample) and the diversities (means over sample pairs).
    """
    truth = np.asarray(truth)
    completions = np.asarray(completions)
    psnr = M.psnr(truth, completions, max_db=PSNR_CAP_DB)
    ssim = M.ssim(truth, completions)
    with np.errstate(invalid="ignore"):
        psnr_hole = M.psnr(truth, completions, mask, max_db=PSNR_CAP_DB)
        scores = {
            "psnr": float(np.mean(psnr)),
            "ssim": float(np.mean(ssim)),
            "psnr_hole": float(np.mean(psnr_hole)),
            "best_psnr_hole": float(M.best_of_n(psnr_hole)),
            "ssim_hole": float(np.mean(M.hole_ssim(truth, completions, mask))),
            "l1_hole": float(np.mean(M.l1(truth, completions, mask))),
            "colour_offset_hole": float(np.mean(M.colour_offset(truth, completions, mask))),
            "tv_hole": float(np.mean(M.total_variation(completions, mask))),
            "tv_inside": float(np.mean(M.total_variation(completions, mask, within_hole=True))),
            **_border_steps(completions, mask),
            "best_psnr": float(M.best_of_n(psnr)),
            "best_ssim": float(M.best_of_n(ssim)),
            "diversity_l1": M.pairwise_l1_diversity(completions, mask),
        }
    if lpips is not None:
        features = lpips.embed(completions)
        if truth_features is None:
            truth_features = lpips.embed(truth[np.newaxis])
        scores["lpips"] = float(np.mean(lpips.distance_from_features(truth_features, features)))
        scores["lpips_diversity"] = lpips.pairwise_mean(features)
    return scores


def _border_steps(images: np.ndarray, mask) -> dict[str, float]:
    """``{"seam_across", "seam_beside"}``: :func:`metrics.border_steps`, mean over ``images``."""
    across, beside = M.border_steps(images, mask)
    return {"seam_across": float(np.mean(across)), "seam_beside": float(np.mean(beside))}


def _nanmean(values: Sequence[float]) -> float:
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def check_eval_inputs(images, masks, num_samples: int = 1, batch_size: int = 1,
                      baselines: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Checks :func:`evaluate`'s arguments; returns uint8 images and 0/1 uint8 masks.

    Raises:
        ValueError: saying what is expected.
    """
    images = np.asarray(images, np.uint8)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"images must be uint8 [B, H, W, 3] with B >= 1; got shape {images.shape}")
    if np.shape(masks)[:3] != images.shape[:3]:
        raise ValueError(f"need one mask [H, W, 1] per image: images {images.shape}, "
                         f"masks {np.shape(masks)}")
    masks = M.hole_pixels(masks, images.shape).astype(np.uint8)
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1, got {num_samples}, {batch_size}")
    for key in baselines:
        if key not in BASELINES:
            raise ValueError(f"unknown baseline {key!r}; valid options are {tuple(BASELINES)}")
    return images, masks


def perceptual_networks(perceptual: bool = True, networks: tuple | None = None):
    """The LPIPS and FID networks of a run: ``(lpips, inception, notes)``.

    ``networks`` if given, else the ImageNet ones when ``perceptual``; either
    is None (with a note saying why) when they are off or cannot be loaded.
    """
    if perceptual and networks is not None:
        return (*networks, [])
    if not perceptual:
        return None, None, ["LPIPS/FID skipped: disabled (--no_perceptual)."]
    lpips, inception, reason = M.load_perceptual_networks()
    if not reason:
        return lpips, inception, []
    log.warning("LPIPS/FID skipped: %s", reason)
    return lpips, inception, [f"LPIPS/FID skipped: {reason}."]


def complete_batch(inpainter, images: np.ndarray, masks: np.ndarray, num_samples: int,
                   seed: int, first_image: int = 0, baselines: Sequence[str] = tuple(BASELINES)
                   ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every method's completions of one batch of images.

    Args:
        inpainter: An ``Inpainter``, or None for the baselines only.
        images: uint8 ``[B, H, W, 3]``; masks ``[B, H, W, 1]``, non-zero = hole.
        num_samples, seed: PiiGAN's N and noise seed.
        first_image: Index of ``images[0]`` in the whole evaluation (the
            noise of image ``i`` depends on its index, not on the batching).
        baselines: Keys of :data:`BASELINES`.

    Returns:
        ``(completions, seconds)``: method key → uint8 ``[B, N, H, W, 3]``
        (N = 1 for a baseline), in report order (PiiGAN first); and method
        key → seconds spent completing.
    """
    completions, seconds = {}, {}
    if inpainter is not None:
        t0 = time.perf_counter()
        completions[MODEL_KEY] = inpainter.sample(images, masks, num_samples, seed=seed,
                                                  first_image=first_image)
        seconds[MODEL_KEY] = time.perf_counter() - t0
    for key in baselines:
        t0 = time.perf_counter()
        completions[key] = inpaint_opencv(images, masks, key)[:, np.newaxis]
        seconds[key] = time.perf_counter() - t0
    return completions, seconds


def score_batch(images: np.ndarray, masks: np.ndarray, completions: dict[str, np.ndarray],
                names: Sequence[str], lpips: M.LPIPSDistance | None = None
                ) -> tuple[list[dict[str, Any]], list[float]]:
    """Scores one batch's completions (:func:`score_completions`) against the truth.

    Returns:
        ``(rows, truth)``: one row per image and method (image-major,
        methods in ``completions`` order), ``{"image", "method", metric: value}``;
        and per ground-truth image ``{"tv_hole", "tv_inside", "seam_across",
        "seam_beside"}``, its hole TV (pairs touching the hole), the TV inside
        its hole, and the steps at its hole's border (:func:`metrics.border_steps`).
    """
    rows, truth_tv = [], []
    for b, (truth, mask) in enumerate(zip(images, masks)):
        truth_features = lpips.embed(truth[np.newaxis]) if lpips is not None else None
        truth_tv.append({"tv_hole": float(M.total_variation(truth, mask)),
                         "tv_inside": float(M.total_variation(truth, mask, within_hole=True)),
                         **_border_steps(truth, mask)})
        for method, samples in completions.items():
            scores = score_completions(truth, samples[b], mask, lpips, truth_features)
            rows.append({"image": names[b], "method": method, **scores})
    return rows, truth_tv


def mean_scores(per_image: Sequence[dict[str, Any]], methods: Sequence[str]
                ) -> dict[str, dict[str, float]]:
    """Method key → metric key → mean over that method's rows (NaNs left out)."""
    means = {}
    for method in methods:
        rows = [r for r in per_image if r["method"] == method]
        keys = [k for k in rows[0] if k not in ("image", "method")]
        means[method] = {k: _nanmean([r[k] for r in rows]) for k in keys}
    return means


def fid_scores(inception, images: np.ndarray, first_samples: dict[str, np.ndarray]
               ) -> tuple[dict[str, float], list[str]]:
    """FID of each method's first samples ``[B, H, W, 3]`` against ``images``.

    Returns:
        ``(fids, notes)``: method key → FID (empty below 2 images), and notes
        on what the number of images allows.
    """
    num = len(images)
    if num < 2:
        return {}, ["FID skipped: it needs at least 2 images."]
    truth_features = inception(images)
    fids = {method: M.fid(truth_features, inception(samples))
            for method, samples in first_samples.items()}
    notes = []
    if num < 2048:
        notes.append(f"FID on {num} images: below the 2,048 feature dimensions, so the "
                     "covariances are singular and FID is biased upwards; compare only "
                     "runs with the same number of images.")
    return fids, notes


class HolePatchSets:
    """The hole patches of a whole evaluation, gathered batch by batch for SWD.

    Every image's patch positions are drawn once (seeded) and cut from the
    truth and from each method's first completion, so all methods are
    compared on the same places (:func:`piigan_tf.metrics.hole_patch_positions`).
    Descriptors are kept as float16 to bound memory (about 56 KB an image
    and method at the defaults).
    """

    def __init__(self, seed: int = 0):
        self._rng = np.random.default_rng([seed, 0x5D])
        self.seed = seed
        self.real: list[list[np.ndarray]] = [[] for _ in range(M.SWD_LEVELS)]
        self.fake: dict[str, list[list[np.ndarray]]] = {}

    def add(self, images: np.ndarray, masks: np.ndarray, completions: dict[str, np.ndarray]) -> None:
        """Adds a batch: uint8 images and masks ``[B, H, W, ...]``, method → ``[B, N, H, W, 3]``."""
        for b, (truth, mask) in enumerate(zip(images, masks)):
            positions = M.hole_patch_positions(mask, self._rng)
            for level, d in enumerate(M.hole_patch_descriptors(truth, positions)):
                self.real[level].append(d.astype(np.float16))
            for method, samples in completions.items():
                levels = self.fake.setdefault(method, [[] for _ in range(M.SWD_LEVELS)])
                for level, d in enumerate(M.hole_patch_descriptors(samples[b, 0], positions)):
                    levels[level].append(d.astype(np.float16))

    @staticmethod
    def _stack(levels: list[list[np.ndarray]]) -> list[np.ndarray]:
        return [np.concatenate(parts).astype(np.float32) if parts else
                np.zeros((0, M.SWD_PATCH_SIZE ** 2 * 3), np.float32) for parts in levels]

    def scores(self) -> tuple[dict[str, float], float]:
        """``({method: SWD}, noise floor)``; NaN where no hole has patches."""
        real = self._stack(self.real)
        swd = {method: M.sliced_wasserstein_distance(real, self._stack(levels), seed=self.seed)[0]
               for method, levels in self.fake.items()}
        return swd, M.swd_noise_floor(real, seed=self.seed)


def evaluate(inpainter, images: np.ndarray, masks: np.ndarray, names: Sequence[str] | None = None,
             num_samples: int = 10, seed: int = 0, batch_size: int = 4,
             baselines: Sequence[str] = tuple(BASELINES), perceptual: bool = True,
             networks: tuple | None = None, num_examples: int = 4,
             progress: bool = True) -> EvaluationResult:
    """Completes and scores ``images`` with PiiGAN and the baselines.

    The steps, each usable on its own: :func:`check_eval_inputs`,
    :func:`perceptual_networks`, then per batch :func:`complete_batch` and
    :func:`score_batch`, then :func:`mean_scores` and :func:`fid_scores`.

    Args:
        inpainter: A :class:`piigan_tf.inference.Inpainter`, or None to
            evaluate the baselines only.
        images: uint8 ``[B, H, W, 3]`` ground truth.
        masks: ``[B, H, W, 1]``, non-zero = hole.
        names: Per-image names for the per-image table (default ``"0"``, ``"1"``, …).
        num_samples: PiiGAN completions per image (N).
        seed: Noise seed, under the rule of ``Inpainter.sample`` with image
            ``i`` at index ``i`` of the request: the samples of image ``i`` are
            those of ``inpainter.sample(images, masks, N, seed)``, independent of
            ``batch_size``, and its first k are those of N = k.
        batch_size: Images per generator pass (each brings N rows).
        baselines: Keys of :data:`BASELINES` to run.
        perceptual: Try LPIPS and FID (skipped, with a note, when the
            ImageNet weights are unavailable).
        networks: Pre-built ``(LPIPSDistance, InceptionFeatures)`` to use
            instead of loading the ImageNet ones (to reuse them across runs;
            tests pass randomly initialised ones).
        num_examples: Images kept for the grid.
        progress: Show a progress bar.

    Returns:
        An :class:`EvaluationResult`.
    """
    from tqdm.auto import tqdm

    images, masks = check_eval_inputs(images, masks, num_samples, batch_size, baselines)
    baselines, baseline_notes = available_baselines(baselines)
    names = [str(i) for i in range(len(images))] if names is None else list(names)
    num, height, width = images.shape[:3]
    methods = ([MODEL_KEY] if inpainter is not None else []) + list(baselines)
    blend = getattr(inpainter, "blend", "paste") if inpainter is not None else None
    blended = ", poisson" if blend == "poisson" else ""
    labels = {MODEL_KEY: f"PiiGAN (N={num_samples}{blended})", **{k: v[0] for k, v in BASELINES.items()}}
    lpips, inception, notes = perceptual_networks(perceptual, networks)
    notes = baseline_notes + notes
    patches = HolePatchSets(seed)

    per_image: list[dict[str, Any]] = []
    truth_tv: list[float] = []
    timings = {m: 0.0 for m in methods}
    first_samples = {m: [] for m in methods}  # for FID: one completion per image
    num_examples = min(num_examples, num)
    examples = {"images": images[:num_examples], "masks": masks[:num_examples],
                "names": names[:num_examples], "completions": {m: [] for m in methods}}
    bar = tqdm(total=num, unit="img", desc="evaluating", disable=not progress)
    try:
        for start in range(0, num, batch_size):
            stop = min(num, start + batch_size)
            completions, seconds = complete_batch(inpainter, images[start:stop],
                                                  masks[start:stop], num_samples, seed, start,
                                                  baselines)
            rows, tv = score_batch(images[start:stop], masks[start:stop], completions,
                                   names[start:stop], lpips)
            per_image += rows
            truth_tv += tv
            patches.add(images[start:stop], masks[start:stop], completions)
            for method, completed in completions.items():  # [b, N, H, W, 3]
                timings[method] += seconds[method]
                first_samples[method] += list(completed[:, 0])
                examples["completions"][method] += list(completed[:max(0, num_examples - start)])
            bar.update(stop - start)
    finally:
        bar.close()
    examples["completions"] = {m: np.stack(v) for m, v in examples["completions"].items() if v}

    means = mean_scores(per_image, methods)
    swd, swd_floor = patches.scores()
    for method in methods:
        rows = [r for r in per_image if r["method"] == method]
        means[method]["texture_ratio"] = M.texture_ratio([r["tv_inside"] for r in rows],
                                                         [t["tv_inside"] for t in truth_tv])
        means[method]["swd"] = swd[method]
        means[method]["seam"] = M.seam_ratio([r["seam_across"] for r in rows],
                                             [r["seam_beside"] for r in rows])
    if inception is not None:
        fids, fid_notes = fid_scores(inception, images,
                                     {m: np.stack(v) for m, v in first_samples.items()})
        for method, value in fids.items():
            means[method]["fid"] = value
        notes += fid_notes

    from piigan_tf.checkpoints import checkpoint_step

    source = getattr(inpainter, "source", None) if inpainter is not None else None
    settings = {
        "model": str(source) if source else None,
        "step": checkpoint_step(source) if source else None,
        "blend": blend,
        "num_images": int(num),
        "image_size": [int(height), int(width)],
        "num_samples": int(num_samples),
        "seed": int(seed),
        "mean_hole_fraction": float(masks.mean()),
        "baselines": list(baselines),
        "baseline_radius": BASELINE_RADIUS,
        "psnr_cap_db": PSNR_CAP_DB,
        "perceptual": lpips is not None,
    }
    settings["swd"] = {"levels": M.SWD_LEVELS, "patch": M.SWD_PATCH_SIZE,
                       "patches_per_image": M.SWD_PATCHES_PER_IMAGE,
                       "directions": M.SWD_DIRECTIONS, "noise_floor": swd_floor}
    return EvaluationResult(methods=methods, labels={m: labels[m] for m in methods}, per_image=per_image,
                            means=means, truth_tv=_nanmean([t["tv_hole"] for t in truth_tv]),
                            settings=settings, notes=notes,
                            timings=timings, examples=examples, swd_noise_floor=swd_floor,
                            truth_tv_inside=_nanmean([t["tv_inside"] for t in truth_tv]),
                            truth_seam=M.seam_ratio([t["seam_across"] for t in truth_tv],
                                                    [t["seam_beside"] for t in truth_tv]))


def evaluate_files(inpainter, data: str | os.PathLike | None = None, num_samples: int = 10,
                   max_images: int | None = None, seed: int = 0, mask_type: str = "center",
                   mask_dir: str | os.PathLike | None = None, crop: str | None = None,
                   windows_per_side: int = 2, config=None, **kwargs) -> EvaluationResult:
    """:func:`evaluate` on files: reads, crops and masks them first.

    Args:
        inpainter: An ``Inpainter`` (its ``config`` gives image and hole
            sizes), or None for baselines only (then pass ``config``).
        data: File list or folder; default: the validation list of the
            model's dataset (:func:`default_eval_data`).
        num_samples: Completions per image.
        max_images: Use the first this many readable images (None: all).
        seed: Seeds the masks, random crops and noise.
        mask_type: One of :data:`EVAL_MASK_TYPES` (``center`` default).
        mask_dir: Folder of mask images (white = hole), used in turn.
        crop: ``"resize"``, ``"center"``, ``"random"`` or ``"grid"`` (see
            :func:`load_eval_images`); default: what the model was trained
            on (:func:`piigan_tf.data.preprocess.model_crop`: ``resize`` for ``RANDOM_CROP: false``,
            else ``center``).
        windows_per_side: Grid windows a row and a column (``crop="grid"``).
        config: Training config; default ``inpainter.config``, else the
            defaults (128×128 images, 64×64 hole box).
        **kwargs: Passed to :func:`evaluate`.
    """
    from piigan_tf.config import load_config
    from piigan_tf.data.preprocess import model_crop

    if config is None:
        config = getattr(inpainter, "config", None)
    if config is None:
        log.warning("no training config with the model; assuming the defaults of setting.yml")
        config = load_config()
    if data is None:
        data = default_eval_data(config)
    if crop is None:
        crop = model_crop(config)
    files = list_eval_files(data)
    names, images = load_eval_images(files, config.img_hw, crop, seed, max_images,
                                     windows_per_side)
    mask_files = mask_files_in(mask_dir) if mask_dir else None
    masks = make_eval_masks(len(images), config.img_hw, config.box_hw, mask_type, seed,
                            (config.MAX_DELTA_HEIGHT, config.MAX_DELTA_WIDTH),
                            (config.VERTICAL_MARGIN, config.HORIZONTAL_MARGIN), mask_files)
    result = evaluate(inpainter, images, masks, names, num_samples=num_samples, seed=seed, **kwargs)
    result.settings.update({
        "data": os.fspath(data),
        "masks": os.fspath(mask_dir) if mask_dir else mask_type,
        "hole_box": list(config.box_hw),
        "crop": crop if crop != "grid" else f"grid of {windows_per_side}x{windows_per_side}",
    })
    return result


# ------------------------------------------------------------------ report
def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.generic):
        return _json_value(value.item())
    return value


def markdown_report(result: EvaluationResult) -> str:
    """The report as markdown: settings, the table, notes and timings."""
    s = result.settings
    lines = ["# PiiGAN evaluation", ""]
    model = s.get("model") or "none (baselines only)"
    step = f" (step {s['step']})" if s.get("step") is not None else ""
    blend = f", completions joined by `--blend {s['blend']}`" if s.get("blend") else ""
    lines += [f"- model: `{model}`{step}{blend}",
              f"- data: `{s.get('data', '?')}`, {s['num_images']} images, "
              f"{s.get('crop', 'center')} crops of {s['image_size'][0]}x{s['image_size'][1]}",
              f"- masks: {s.get('masks', '?')} (hole box {s.get('hole_box', '?')}, "
              f"{100 * s['mean_hole_fraction']:.1f}% of pixels on average), seed {s['seed']}",
              f"- PiiGAN samples per image: N = {s['num_samples']}; baselines: one completion each "
              f"(cv2.inpaint, radius {s['baseline_radius']}; FSR: cv2.xphoto, fast)", ""]
    lines += [result.table(), ""]
    lines += ["Means over images. *hole* = the masked pixels; *SSIM hole box* = the hole's "
              "bounding box (at least 11x11); TV = mean |neighbour difference| / 255 over pairs "
              "touching the hole (ground truth column for reference); texture ratio = TV inside "
              "the holes / the truth's (1 = as textured as the real holes); SWD = sliced "
              "Wasserstein distance of 7x7 Laplacian-pyramid patches inside the holes, first sample of each "
              "image (ground truth column: its noise floor, two random halves of the real "
              "patches); seam = mean step across the hole's border / mean step just inside and "
              "outside it (about 1 for real images, the ground truth column; above 1: a visible "
              "seam); colour offset = distance between the hole's mean RGB colour and the "
              "truth's; L1, colour offset and diversities /255. Definitions: docs/evaluation.md.", ""]
    difficulty = result.difficulty_table()
    if difficulty:
        lines += ["By difficulty: the images in four equal groups by the best baseline's hole "
                  "PSNR (a smooth hole is easy for a classical fill), mean hole PSNR (dB) of each "
                  "method there and the mean colour offset (/255):", "", difficulty, ""]
    for note in result.notes:
        lines.append(f"- {note}")
    timing = ", ".join(f"{result.labels[m]} {t:.1f} s" for m, t in result.timings.items())
    lines += [f"- completion time (excluding scoring): {timing}", ""]
    return "\n".join(lines)


def write_report(result: EvaluationResult, output_dir: str | os.PathLike,
                 grid_samples: int = 6) -> dict[str, Path]:
    """Writes the report files.

    Files: ``results.md`` (settings, table, notes), ``metrics.json``
    (settings, means, per-image figures, notes, timings), ``per_image.csv``
    (one row per image and method), ``metrics.png`` (bar chart per metric)
    and ``grid.png`` (ground truth | input | baselines | samples).

    Returns:
        ``{kind: path}`` for the files written.

    Raises:
        OSError: naming the file that cannot be written.
    """
    from piigan_tf.utils import write_png

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "results.md", "json": out / "metrics.json",
             "csv": out / "per_image.csv", "chart": out / "metrics.png", "grid": out / "grid.png"}
    paths["markdown"].write_text(markdown_report(result))
    payload = {"settings": result.settings, "labels": result.labels, "means": result.means,
               "ground_truth": {"tv_hole": result.truth_tv, "texture_ratio": 1.0,
                                "swd_noise_floor": result.swd_noise_floor,
                                "seam": result.truth_seam}, "notes": result.notes,
               "timings_s": result.timings, "by_difficulty": result.by_difficulty(),
               "per_image": result.per_image,
               "metrics": {m.key: {"label": m.label, "better": m.better} for m in METRICS
                           if m.key in result.metric_keys()}}
    paths["json"].write_text(json.dumps(_json_value(payload), indent=2))
    keys = [k for k in result.metric_keys() if k != "fid"]
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "method", *keys])
        for row in result.per_image:
            writer.writerow([row["image"], row["method"],
                             *(f"{row[k]:.6g}" if k in row else "" for k in keys)])
    plot_metrics(result, paths["chart"])
    write_png(paths["grid"], example_grid(result, grid_samples))
    return paths


def plot_metrics(result: EvaluationResult, path: str | os.PathLike) -> None:
    """Bar chart, one panel per metric, one bar per method (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    keys = result.metric_keys()
    cols = min(4, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes.flat, keys):
        info = METRIC_INFO[key]
        values = [result.means[m].get(key, float("nan")) for m in result.methods]
        ax.bar(range(len(values)), values, color=colours[:len(values)])
        ax.set_xticks(range(len(values)), [result.labels[m] for m in result.methods],
                      rotation=20, ha="right", fontsize=7)
        ax.set_title(f"{info.label}\n({info.better})", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        if key == "tv_hole" and math.isfinite(result.truth_tv):
            ax.axhline(result.truth_tv, color="k", linestyle="--", linewidth=1, label="ground truth")
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(f"{result.settings['num_images']} images, N = {result.settings['num_samples']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def example_grid(result: EvaluationResult, max_samples: int = 6, pad: int = 2) -> np.ndarray:
    """uint8 grid, one row per example image: truth | input (hole white) | baselines | samples.

    A title strip names the columns (:func:`piigan_tf.utils.grid`).
    """
    from piigan_tf.utils import grid

    ex = result.examples
    images, masks = ex["images"], ex["masks"]
    columns = [("truth", images), ("input", np.where(masks > 0, np.uint8(255), images))]
    for method in result.methods:
        if method != MODEL_KEY:
            label = result.labels[method].replace("OpenCV ", "")
            columns.append((label, ex["completions"][method][:, 0]))
    if MODEL_KEY in result.methods:
        samples = ex["completions"][MODEL_KEY]
        for j in range(min(max_samples, samples.shape[1])):
            columns.append((f"sample {j + 1}", samples[:, j]))
    rows = [[cells[r] for _, cells in columns] for r in range(len(images))]
    return grid(rows, pad, titles=[title for title, _ in columns])
