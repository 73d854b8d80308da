"""Image-quality and diversity metrics for inpainting, as pure functions.

Conventions (these are *pixel* metrics, computed on the uint8 images a user
sees, not on the networks' [-1, 1] floats):

* Images are arrays ``[..., H, W, C]`` of values in ``[0, max_val]``
  (``max_val=255`` for uint8). Leading dimensions broadcast, so one ground
  truth ``[H, W, 3]`` can be compared with ``N`` samples ``[N, H, W, 3]``.
* Masks are ``[..., H, W, 1]`` or ``[H, W]`` with **non-zero = hole**
  (float masks: ``>= 0.5``), the project's convention.
* Every function returns one value per image (the leading dimensions), as a
  float64 numpy array (a 0-d array for a single image).

Metric definitions (``x`` the completion, ``y`` the ground truth, ``M`` the
set of hole pixels, ``C`` channels, ``L = max_val``):

* :func:`psnr` — ``10 log10(L² / MSE)``, MSE over all pixels and channels
  (or over ``M`` only, with a mask). dB, ``[0, ∞)``, higher is better;
  ``+inf`` for identical images (``max_db`` caps it for averaging).
* :func:`ssim` — Wang et al. 2004 SSIM with an 11×11 Gaussian window
  (σ = 1.5), ``K1 = 0.01``, ``K2 = 0.03``, averaged over the valid window
  positions and the channels (scikit-image's ``structural_similarity``,
  which equals ``tf.image.ssim``). ``[-1, 1]``, 1 for identical images.
* :func:`hole_ssim` — SSIM of the hole's bounding box, grown to at least
  11×11 so the window fits. For the reference centre box it is the hole.
* :func:`l1` — ``mean |x − y| / L`` over ``M`` (or all pixels); ``[0, 1]``.
* :func:`total_variation` — mean absolute difference between vertically and
  horizontally neighbouring pixels, over the pairs with at least one pixel in
  ``M`` (or all pairs), divided by ``L``; ``[0, 1]``. A property of one image:
  compare a completion's with the ground truth's (blurry fills score lower,
  noisy ones higher, and a visible seam at the hole border raises it).
* :func:`pairwise_l1_diversity` — mean over the ``N(N−1)/2`` pairs of samples
  of their :func:`l1` distance inside ``M``; ``[0, 1]``, 0 when all samples
  are equal (or ``N = 1``).
* :func:`best_of_n` — the best of ``N`` samples per image (the PICNet
  protocol: the sample closest to the ground truth).
* :func:`texture_ratio` — the mean :func:`total_variation` inside the
  completed holes (pairs of hole pixels) over that inside the real holes:
  1 = as textured as the real images,
  well below 1 = a smooth (blurred) fill, above 1 = noisier than the truth.
* :func:`seam_ratio` of :func:`border_steps` — at the hole's border, the mean
  absolute step from the hole pixel to the known pixel across it, over the
  mean step between the two hole pixels just inside it and between the two
  known pixels just outside: about 1 for a real image, above 1 for a
  visible seam, below 1 for a fill that starts smooth at the border.
* :func:`sliced_wasserstein_distance` on the descriptors of
  :func:`hole_patch_descriptors` — SWD (Karras et al. 2018, "Progressive
  Growing of GANs", §5): the sliced Wasserstein distance between sets of
  7×7 patches of a 3-level Laplacian pyramid lying inside the holes, per
  level, ×10³, averaged over levels. A set-level texture distance that needs
  no downloaded network; 0 for identical sets, lower is better.
* :class:`LPIPSDistance` — LPIPS-style distance with ImageNet VGG16 features
  and **uniform** layer weights (the learned linear heads of LPIPS are not
  distributed with Keras): channel-normalised features of
  ``block{1,2}_conv2`` and ``block{3,4,5}_conv3``, squared differences summed
  over channels, averaged over positions, summed over the 5 layers.
  ``[0, 10]`` (each layer ``[0, 2]`` since ReLU features are non-negative),
  0 for identical images. Not comparable to published LPIPS numbers.
* :func:`frechet_distance` / :func:`fid` — Fréchet distance between Gaussians
  fitted to InceptionV3 pool features (Heusel et al. 2017):
  ``|μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)``; ``[0, ∞)``, lower is better.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger("piigan_tf")

#: Window of SSIM (Wang et al. 2004): Gaussian, 11 × 11, σ = 1.5.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5

#: The VGG16 layers LPIPS reads (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
LPIPS_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")


# ----------------------------------------------------------------- helpers
def _as_float(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def hole_pixels(mask, shape: Sequence[int] | None = None) -> np.ndarray:
    """A mask as bool ``[..., H, W, 1]`` (True = hole), broadcast to ``shape[:-1] + (1,)``.

    Args:
        mask: ``[..., H, W, 1]`` or ``[H, W]``; non-zero (ints, bools) or
            ``>= 0.5`` (floats) is a hole.
        shape: Image shape ``[..., H, W, C]`` to broadcast to.
    """
    mask = np.asarray(mask)
    if mask.ndim == 2:
        mask = mask[..., np.newaxis]
    hole = mask >= 0.5 if np.issubdtype(mask.dtype, np.floating) else mask != 0
    if hole.shape[-1] != 1:
        raise ValueError(f"masks must have one channel ([..., H, W, 1] or [H, W]); got shape {mask.shape}")
    if shape is not None:
        hole = np.broadcast_to(hole, tuple(shape[:-1]) + (1,))
    return hole


def _broadcast(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_float(a), _as_float(b)
    if a.ndim < 3 or b.ndim < 3:
        raise ValueError(f"images must be [..., H, W, C]; got shapes {a.shape} and {b.shape}")
    try:
        return np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"image shapes {a.shape} and {b.shape} do not broadcast") from None


def _masked_mean(values: np.ndarray, mask) -> np.ndarray:
    """Mean of ``values [..., H, W, C]`` over hole pixels (all channels); NaN for an empty hole."""
    if mask is None:
        return values.mean(axis=(-3, -2, -1))
    hole = hole_pixels(mask, values.shape).astype(np.float64)
    count = hole.sum(axis=(-3, -2, -1)) * values.shape[-1]
    total = (values * hole).sum(axis=(-3, -2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# ---------------------------------------------------------------- quality
def mse(a, b, mask=None) -> np.ndarray:
    """Mean squared error over all pixels and channels, or over the hole.

    Returns:
        float64 ``[...]``; NaN where the mask has no hole.
    """
    a, b = _broadcast(a, b)
    return _masked_mean(np.square(a - b), mask)


def psnr(a, b, mask=None, max_val: float = 255.0, max_db: float | None = None) -> np.ndarray:
    """Peak signal-to-noise ratio ``10 log10(max_val² / MSE)`` in dB.

    Args:
        a, b: Images ``[..., H, W, C]`` in ``[0, max_val]`` (broadcastable).
        mask: Optional hole mask: the MSE is taken over hole pixels only.
        max_val: Dynamic range (255 for uint8).
        max_db: If given, values are capped here (identical images give
            ``+inf``, which would swamp a mean).

    Returns:
        float64 ``[...]``: ``+inf`` (or ``max_db``) for identical images, NaN
        for an empty hole.
    """
    err = mse(a, b, mask)
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(float(max_val) ** 2 / err)
    if max_db is not None:
        value = np.minimum(value, max_db)
    return value


def l1(a, b, mask=None, max_val: float = 255.0) -> np.ndarray:
    """Mean absolute error divided by ``max_val``, over all pixels or the hole; in ``[0, 1]``."""
    a, b = _broadcast(a, b)
    return _masked_mean(np.abs(a - b), mask) / float(max_val)


def colour_offset(a, b, mask, max_val: float = 255.0) -> np.ndarray:
    """How far the mean colour of ``b``'s hole is from ``a``'s: the Euclidean
    distance between the two mean RGB colours over the hole, divided by ``max_val``.

    It tells whether a fill takes its colour from its surroundings. A hole's
    squared error is its colour offset squared plus the error left once the
    means agree, so a textured fill of the right colour keeps a small offset
    while it loses PSNR, and a fill of the wrong colour loses both.

    Args:
        a, b: Images ``[..., H, W, C]`` in ``[0, max_val]``.
        mask: ``[..., H, W, 1]``, non-zero = hole.

    Returns:
        float64 ``[...]``, 0 for equal hole means; NaN for an empty hole.
    """
    a, b = _broadcast(a, b)
    hole = hole_pixels(mask, a.shape).astype(np.float64)
    count = hole.sum(axis=(-3, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a = (a * hole).sum(axis=(-3, -2)) / count
        mean_b = (b * hole).sum(axis=(-3, -2)) / count
    return np.sqrt(((mean_a - mean_b) ** 2).sum(axis=-1)) / float(max_val)


def ssim(a, b, max_val: float = 255.0) -> np.ndarray:
    """Structural similarity (Wang et al. 2004), 11×11 Gaussian window, σ = 1.5.

    scikit-image's ``structural_similarity`` with ``gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False`` (the paper's settings), per
    image, averaged over channels. It equals ``tf.image.ssim`` (the tests
    check this) and runs ~8× faster on CPU: separable filtering where
    TensorFlow convolves with the full 11×11 window.

    Args:
        a, b: Images ``[..., H, W, C]`` in ``[0, max_val]``, at least 11×11.
        max_val: Dynamic range.

    Returns:
        float64 ``[...]`` in ``[-1, 1]``; 1 for identical images.
    """
    from skimage.metrics import structural_similarity

    a, b = _broadcast(a, b)
    if min(a.shape[-3:-1]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}; got {a.shape}")
    lead = a.shape[:-3]
    flat_a, flat_b = a.reshape((-1,) + a.shape[-3:]), b.reshape((-1,) + b.shape[-3:])
    values = [structural_similarity(x, y, data_range=float(max_val), channel_axis=-1,
                                    gaussian_weights=True, sigma=SSIM_SIGMA,
                                    use_sample_covariance=False, K1=0.01, K2=0.03)
              for x, y in zip(flat_a, flat_b)]
    return np.asarray(values, np.float64).reshape(lead)


def hole_box(mask, min_size: int = SSIM_WINDOW) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, left, bottom, right)`` (exclusive ends) of a mask's hole.

    The box is grown symmetrically (then shifted inside the image) to at least
    ``min_size`` on each side, or to the image size if that is smaller.

    Args:
        mask: ``[H, W, 1]`` or ``[H, W]``; a single mask.

    Returns:
        The box, or None when there is no hole.
    """
    hole = hole_pixels(mask)[..., 0]
    if hole.ndim != 2:
        raise ValueError(f"hole_box takes one mask [H, W(, 1)]; got shape {np.shape(mask)}")
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if rows.size == 0:
        return None

    def grow(lo, hi, size):
        need = min(min_size, size) - (hi - lo)
        if need > 0:
            lo -= need // 2
            hi += need - need // 2
            shift = max(0, -lo) - max(0, hi - size)
            lo, hi = lo + shift, hi + shift
        return lo, hi

    top, bottom = grow(int(rows[0]), int(rows[-1]) + 1, hole.shape[0])
    left, right = grow(int(cols[0]), int(cols[-1]) + 1, hole.shape[1])
    return top, left, bottom, right


def hole_ssim(a, b, mask, max_val: float = 255.0) -> np.ndarray:
    """SSIM of the hole's bounding box (at least 11×11, see :func:`hole_box`).

    Args:
        a, b: Images ``[..., H, W, C]`` sharing one hole.
        mask: One mask ``[H, W, 1]`` / ``[H, W]`` for all of them.

    Returns:
        float64 ``[...]``; NaN when the mask has no hole.
    """
    a, b = _broadcast(a, b)
    box = hole_box(mask)
    if box is None:
        return np.full(a.shape[:-3], np.nan)
    top, left, bottom, right = box
    crop = (Ellipsis, slice(top, bottom), slice(left, right), slice(None))
    return ssim(a[crop], b[crop], max_val)


def total_variation(x, mask=None, max_val: float = 255.0, within_hole: bool = False) -> np.ndarray:
    """Mean absolute difference of neighbouring pixels, over pairs touching the hole.

    With ``mask=None`` all vertical and horizontal neighbour pairs count, and
    ``total_variation(x) * pairs * C * max_val == tf.image.total_variation(x)``.

    Args:
        x: Images ``[..., H, W, C]`` in ``[0, max_val]``.
        mask: Optional hole mask; a pair counts if either pixel is a hole.
        within_hole: Count only the pairs whose two pixels are both in the
            hole: the texture of the fill itself, without the seam at its border.

    Returns:
        float64 ``[...]`` in ``[0, 1]``; NaN for an empty hole.
    """
    x = np.asarray(x)
    if mask is not None and np.ndim(mask) in (2, 3):
        # One mask for all images: only pairs within one pixel of the hole's
        # bounding box can touch the hole, so the rest need not be computed.
        box = hole_box(mask, min_size=0)
        if box is not None:
            top, left, bottom, right = box
            rows = slice(max(0, top - 1), bottom + 1)
            cols = slice(max(0, left - 1), right + 1)
            x = x[..., rows, cols, :]
            mask = hole_pixels(mask)[rows, cols]
    x = _as_float(x)
    dv = np.abs(x[..., 1:, :, :] - x[..., :-1, :, :])
    dh = np.abs(x[..., :, 1:, :] - x[..., :, :-1, :])
    if mask is None:
        wv = np.ones(dv.shape[:-1] + (1,))
        wh = np.ones(dh.shape[:-1] + (1,))
    else:
        hole = hole_pixels(mask, x.shape).astype(np.float64)
        pair = np.minimum if within_hole else np.maximum
        wv = pair(hole[..., 1:, :, :], hole[..., :-1, :, :])
        wh = pair(hole[..., :, 1:, :], hole[..., :, :-1, :])
    axes = (-3, -2, -1)
    total = (dv * wv).sum(axis=axes) + (dh * wh).sum(axis=axes)
    count = (wv.sum(axis=axes) + wh.sum(axis=axes)) * x.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan) / float(max_val)


# ---------------------------------------------------------------- diversity
def best_of_n(values, axis: int = -1, higher_is_better: bool = True) -> np.ndarray:
    """The best per-sample value along ``axis`` (NaNs ignored): PICNet's best-of-N.

    Example: ``best_of_n(psnr(truth, samples))`` with samples ``[N, H, W, 3]``.
    """
    values = _as_float(values)
    missing = np.isnan(values)
    filled = np.where(missing, -np.inf if higher_is_better else np.inf, values)
    best = filled.max(axis=axis) if higher_is_better else filled.min(axis=axis)
    return np.where(missing.all(axis=axis), np.nan, best)


def mean_pairwise(items: Sequence, distance: Callable) -> float:
    """Mean of ``distance(items[i], items[j])`` over all pairs ``i < j``; 0 for fewer than 2."""
    n = len(items)
    if n < 2:
        return 0.0
    values = [float(distance(items[i], items[j])) for i in range(n) for j in range(i + 1, n)]
    return float(np.mean(values))


def pairwise_l1_diversity(samples, mask=None, max_val: float = 255.0) -> float:
    """Mean pairwise L1 between the samples of one image, inside the hole.

    Args:
        samples: ``[N, H, W, C]`` completions of one image.
        mask: Its hole ``[H, W, 1]`` / ``[H, W]`` (None: whole image).
        max_val: Dynamic range.

    Returns:
        ``mean_{i<j} mean_{p ∈ hole, c} |s_i − s_j| / max_val`` in ``[0, 1]``;
        0 for ``N < 2``; NaN for an empty hole.
    """
    samples = _as_float(samples)
    if samples.ndim != 4:
        raise ValueError(f"samples must be [N, H, W, C]; got shape {samples.shape}")
    if mask is None:
        pixels = samples.reshape(samples.shape[0], -1)
    else:
        hole = hole_pixels(mask)[..., 0]
        if not hole.any():
            return float("nan")
        pixels = samples[:, hole, :].reshape(samples.shape[0], -1)
    n = pixels.shape[0]
    if n < 2:
        return 0.0
    total = sum(np.abs(pixels[i + 1:] - pixels[i]).mean(axis=1).sum() for i in range(n - 1))
    return float(total / (n * (n - 1) / 2) / max_val)


def texture_ratio(completed_tv, truth_tv) -> float:
    """Hole texture of the completions relative to the truth's.

    Args:
        completed_tv: :func:`total_variation` of the completed holes
            (``within_hole=True``: the fill's own texture), one per image
            (or per sample).
        truth_tv: The same of the real holes, one per image.

    Returns:
        ``mean(completed_tv) / mean(truth_tv)`` (NaNs left out): 1 = as
        textured as the real images; a smooth fill is well below 1. NaN when
        the real holes have no texture at all.
    """
    completed = _as_float(completed_tv).ravel()
    truth = _as_float(truth_tv).ravel()
    completed, truth = completed[~np.isnan(completed)], truth[~np.isnan(truth)]
    if not completed.size or not truth.size or truth.mean() <= 0:
        return float("nan")
    return float(completed.mean() / truth.mean())


def border_steps(x, mask, max_val: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """The steps across the hole's border and beside it, for :func:`seam_ratio`.

    At every border crossing with two pixels on each side along the crossing
    direction (hole pixels ``p0, p``, then known pixels ``q, q1``, in any of
    the four directions), the step across the border is ``|x_q − x_p|`` and
    the steps beside it are ``|x_p − x_p0|`` (just inside) and
    ``|x_q1 − x_q|`` (just outside). Where an image runs on across the border
    as it does on either side (a real image), the two are alike; a seam (a
    step in brightness or colour at the border) makes the first larger.

    Args:
        x: Images ``[..., H, W, C]`` in ``[0, max_val]``.
        mask: Their hole, ``[H, W, 1]`` / ``[H, W]`` (one for all images).
        max_val: Dynamic range.

    Returns:
        ``(across, beside)``: float64 ``[...]`` each, the mean step across
        the border and the mean of the steps just inside and just outside,
        over crossings and channels, ``/ max_val``; NaN without crossings.
    """
    x = _as_float(x) / float(max_val)
    hole = hole_pixels(mask)[..., 0]
    if hole.ndim != 2:
        raise ValueError(f"border_steps takes one mask [H, W(, 1)]; got shape {np.shape(mask)}")
    across = np.zeros(x.shape[:-3])
    beside = np.zeros(x.shape[:-3])
    count = 0.0
    transposed = np.swapaxes(x, -3, -2)
    for image, h in ((x, hole), (x[..., ::-1, :, :], hole[::-1]),
                     (transposed, hole.T), (transposed[..., ::-1, :, :], hole.T[::-1])):
        rows = h.shape[0] - 3
        if rows < 1:
            continue
        # Rows i .. i+3 are p0, p (hole), q, q1 (known), going down.
        where = (h[:-3] & h[1:-2] & ~h[2:-1] & ~h[3:]).astype(np.float64)[..., np.newaxis]

        def step(a: int, b: int) -> np.ndarray:
            diff = np.abs(image[..., b:rows + b, :, :] - image[..., a:rows + a, :, :])
            return (diff * where).sum(axis=(-3, -2, -1))

        across += step(1, 2)
        beside += 0.5 * (step(0, 1) + step(2, 3))
        count += where.sum() * x.shape[-1]
    if count == 0:
        nan = np.full(x.shape[:-3], np.nan)
        return nan, nan.copy()
    return across / count, beside / count


def seam_ratio(across, beside) -> float:
    """How visible the hole's border is, from :func:`border_steps` of a set of images.

    Args:
        across: The mean steps across the border, one per image (or sample).
        beside: The mean steps just inside and outside it, the same images.

    Returns:
        ``mean(across) / mean(beside)`` (pairs with a NaN left out): about 1
        for real images, above 1 where fills show a seam, below 1 where they
        start as a smooth continuation of the border (a classical fill); NaN
        when the images are flat beside the border.
    """
    across = _as_float(across).ravel()
    beside = _as_float(beside).ravel()
    keep = ~(np.isnan(across) | np.isnan(beside))
    if not keep.any() or beside[keep].mean() <= 0:
        return float("nan")
    return float(across[keep].mean() / beside[keep].mean())


# --------------------------------------------------------------------- SWD
#: SWD settings (Karras et al. 2018 use 7×7 patches, 128 per image and level,
#: and 4 × 128 random directions).
SWD_PATCH_SIZE = 7
SWD_LEVELS = 3
SWD_PATCHES_PER_IMAGE = 64
SWD_DIRECTIONS = 512


def laplacian_pyramid(image, levels: int = SWD_LEVELS) -> list[np.ndarray]:
    """The Laplacian pyramid of one image, finest level first.

    Built with OpenCV's ``pyrDown``/``pyrUp`` (the 5-tap binomial filter of
    Burt & Adelson, as Karras et al.): level ``l < levels − 1`` is the
    band-pass ``g_l − up(g_{l+1})`` at ``1/2^l`` of the size, the last level
    is the low-pass ``g_{levels−1}``.

    Args:
        image: ``[H, W, C]``, any numeric dtype.
        levels: Number of levels (>= 1).

    Returns:
        ``levels`` float32 arrays ``[H/2^l, W/2^l, C]`` (sizes rounded up).
    """
    import cv2

    current = np.asarray(image, np.float32)
    pyramid = []
    for _ in range(levels - 1):
        down = cv2.pyrDown(current)
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        if up.ndim == 2:  # OpenCV drops a single channel
            up = up[..., np.newaxis]
        pyramid.append(current - up)
        current = down if down.ndim == 3 else down[..., np.newaxis]
    pyramid.append(current)
    return pyramid


def hole_patch_positions(mask, rng: np.random.Generator, levels: int = SWD_LEVELS,
                         per_image: int = SWD_PATCHES_PER_IMAGE,
                         patch_size: int = SWD_PATCH_SIZE) -> list[tuple[np.ndarray, np.ndarray]]:
    """Where to cut the hole patches of one image, per pyramid level.

    A patch lies wholly in the hole of its level (pixels whose whole
    ``2^l × 2^l`` block is hole), so it measures the fill's texture and not
    the known pixels around it. Up to ``per_image`` centres are drawn
    without replacement.

    Args:
        mask: ``[H, W, 1]`` or ``[H, W]``, non-zero = hole.
        rng: Draws the centres (pass one seeded generator for a whole set).

    Returns:
        One ``(rows, cols)`` pair of int arrays per level (empty where the
        hole has no such pixel at that level).
    """
    import cv2

    hole = hole_pixels(mask)[..., 0]
    positions = []
    for level in range(levels):
        f = 2 ** level
        h, w = -(-hole.shape[0] // f), -(-hole.shape[1] // f)
        padded = np.zeros((h * f, w * f), bool)
        padded[:hole.shape[0], :hole.shape[1]] = hole
        level_hole = padded.reshape(h, f, w, f).all(axis=(1, 3))
        # Whole patches in the hole: SWD judges the fill's texture, not the
        # seam at its border (the texture ratio's pairs and the grids do).
        whole = cv2.erode(level_hole.astype(np.uint8), np.ones((patch_size, patch_size), np.uint8),
                          borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        rows, cols = np.nonzero(whole)
        if rows.size > per_image:
            pick = rng.choice(rows.size, per_image, replace=False)
            pick.sort()
            rows, cols = rows[pick], cols[pick]
        positions.append((rows, cols))
    return positions


def hole_patch_descriptors(image, positions: Sequence[tuple[np.ndarray, np.ndarray]],
                           patch_size: int = SWD_PATCH_SIZE) -> list[np.ndarray]:
    """The patches of ``image``'s Laplacian pyramid at ``positions`` (one entry per level).

    Args:
        image: ``[H, W, C]``.
        positions: :func:`hole_patch_positions` of its mask.

    Returns:
        Per level, float32 ``[n, patch_size² · C]``.
    """
    half = patch_size // 2
    offsets = np.arange(-half, half + 1)
    out = []
    for band, (rows, cols) in zip(laplacian_pyramid(image, len(positions)), positions):
        r = rows[:, None, None] + offsets[None, :, None]
        c = cols[:, None, None] + offsets[None, None, :]
        out.append(band[r, c].reshape(len(rows), patch_size * patch_size * band.shape[-1]))
    return out


def _sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> float:
    """Mean over directions of the 1-D Wasserstein-1 distance of the projections."""
    pa = np.sort(a @ directions, axis=0)
    pb = np.sort(b @ directions, axis=0)
    if len(pa) != len(pb):  # compare quantiles at the smaller set's ranks
        n = min(len(pa), len(pb))
        pa = pa[np.linspace(0, len(pa) - 1, n).round().astype(int)]
        pb = pb[np.linspace(0, len(pb) - 1, n).round().astype(int)]
    return float(np.abs(pa - pb).mean())


def sliced_wasserstein_distance(real: Sequence[np.ndarray], fake: Sequence[np.ndarray],
                                num_directions: int = SWD_DIRECTIONS, seed: int = 0
                                ) -> tuple[float, list[float]]:
    """SWD between two sets of patch descriptors, level by level.

    Each level's descriptors are normalised by the per-channel mean and
    standard deviation of the two sets together (both alike, so a fill that
    loses contrast stays far from the truth, and the distance is symmetric;
    Karras et al. normalise each set by its own statistics, which would hide
    a loss of contrast), then projected on
    ``num_directions`` random unit directions (seeded, the same for every
    comparison); the distance of a level is the mean absolute difference of
    the sorted projections, ×10³ as Karras et al. report it.

    Args:
        real, fake: Per level, ``[n, D]`` descriptors (:func:`hole_patch_descriptors`
            of many images, concatenated). Sets of different sizes are
            compared at the smaller one's quantiles.
        num_directions: Random projections per level.
        seed: Seeds the directions.

    Returns:
        ``(mean over levels, [per level])``; NaN where a level has no patches.

    Raises:
        ValueError: the sets have different numbers of levels or descriptor sizes.
    """
    if len(real) != len(fake):
        raise ValueError(f"need the same pyramid levels: {len(real)} vs {len(fake)}")
    per_level = []
    for level, (a, b) in enumerate(zip(real, fake)):
        a, b = _as_float(a), _as_float(b)
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
            raise ValueError(f"level {level}: descriptors must be [n, D] alike; got {a.shape}, {b.shape}")
        if not len(a) or not len(b):
            per_level.append(float("nan"))
            continue
        pixels = SWD_PATCH_SIZE * SWD_PATCH_SIZE
        channels = a.shape[1] // pixels if a.shape[1] % pixels == 0 else 1
        both = np.concatenate([a, b]).reshape(-1, channels)
        mean, std = both.mean(axis=0), both.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        a = ((a.reshape(len(a), -1, channels) - mean) / std).reshape(len(a), -1)
        b = ((b.reshape(len(b), -1, channels) - mean) / std).reshape(len(b), -1)
        rng = np.random.default_rng([seed, level])
        directions = rng.standard_normal((a.shape[1], num_directions))
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        per_level.append(1e3 * _sliced_wasserstein(a, b, directions))
    values = np.asarray(per_level)
    mean = float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")
    return mean, per_level


def swd_noise_floor(real: Sequence[np.ndarray], seed: int = 0,
                    num_directions: int = SWD_DIRECTIONS) -> float:
    """SWD between two random halves of the real patches: what SWD reads for sets
    drawn from the same distribution (lower than any fill can be expected to get,
    for sets of half the size)."""
    rng = np.random.default_rng([seed, 1])
    halves_a, halves_b = [], []
    for level in real:
        level = _as_float(level)
        order = rng.permutation(len(level))
        half = len(level) // 2
        halves_a.append(level[order[:half]])
        halves_b.append(level[order[half:2 * half]])
    return sliced_wasserstein_distance(halves_a, halves_b, num_directions, seed)[0]


# --------------------------------------------------------------------- FID
def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased, as pytorch-fid) of ``[num, D]`` features."""
    features = _as_float(features)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors [num, D]; got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``|mu1 − mu2|² + tr(sigma1) + tr(sigma2) − 2 tr((sigma1 sigma2)^½)``,
    computed as pytorch-fid does (Heusel et al. 2017, https://arxiv.org/abs/1706.08500):
    ``scipy.linalg.sqrtm``; if the product is singular enough for the root
    to come out non-finite, ``eps`` is added to both diagonals; a numerically
    imaginary part is dropped.

    Returns:
        The distance, ``>= 0`` up to round-off.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(_as_float(mu1)), np.atleast_1d(_as_float(mu2))
    sigma1, sigma2 = np.atleast_2d(_as_float(sigma1)), np.atleast_2d(_as_float(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Fewer samples than dimensions make the covariances singular; that is
        # expected for small evaluation sets and handled below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            log.warning("FID: singular product of covariances; adding %g to the diagonals", eps)
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.max(np.abs(covmean.imag))
        if imaginary > 1e-3 * max(1.0, np.max(np.abs(covmean.real))):
            log.warning("FID: matrix square root has an imaginary part of %.3g (few samples?)", imaginary)
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(value)


def fid(features1, features2) -> float:
    """FID of two feature sets ``[n, D]`` and ``[m, D]`` (e.g. :class:`InceptionFeatures` outputs).

    Equals :func:`frechet_distance` of their :func:`feature_statistics`, but
    computes the trace term without a ``D × D`` matrix square root: with
    centred features ``A`` and ``B``, ``Σ₁ = AᵀA/(n−1)``, ``Σ₂ = BᵀB/(m−1)``
    and the non-zero eigenvalues of ``Σ₁Σ₂`` are those of
    ``(ABᵀ)(ABᵀ)ᵀ / ((n−1)(m−1))``, so ``tr((Σ₁Σ₂)^½) = ‖ABᵀ‖_* / √((n−1)(m−1))``
    (the nuclear norm: the sum of singular values). Exact, and with fewer
    images than dimensions (e.g. 1,000 images at D = 2048) it takes a second
    where ``sqrtm`` takes minutes. With more images than dimensions the
    ``n × m`` matrix would be the larger one, so :func:`frechet_distance` is used.
    """
    a, b = _as_float(features1), _as_float(features2)
    for f in (a, b):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"need at least 2 feature vectors [num, D]; got shape {f.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape} vs {b.shape}")
    if a.shape[1] <= min(len(a), len(b)):
        return frechet_distance(*feature_statistics(a), *feature_statistics(b))
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    a, b = a - mu1, b - mu2
    n, m = len(a), len(b)
    trace1 = np.sum(a * a) / (n - 1)
    trace2 = np.sum(b * b) / (m - 1)
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt((n - 1) * (m - 1))
    diff = mu1 - mu2
    return float(diff @ diff + trace1 + trace2 - 2.0 * cross)


# ------------------------------------------------- networks (LPIPS and FID)
def _batched(fn: Callable, images: np.ndarray, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield fn(images[start:start + batch_size])


class LPIPSDistance:
    """LPIPS-style distance with ImageNet VGG16 features and uniform layer weights.

    ``d(x, y) = Σ_l mean_{h,w} Σ_c (f̂_l(x) − f̂_l(y))²`` where ``f̂_l`` are the
    VGG16 activations of layer ``l`` in :data:`LPIPS_LAYERS`, divided by
    their Euclidean norm over channels at each position (Zhang et al. 2018,
    https://arxiv.org/abs/1801.03924, without the learned per-channel
    weights, which Keras does not ship: their "baseline" variant).

    Args:
        weights: ``"imagenet"`` (Keras downloads them to ``~/.keras/models``
            on first use; raises if that fails) or None (random, for tests).
        input_shape: Fixed ``(H, W, 3)``, or the default ``(None, None, 3)``
            for any size of at least 16×16.
    """

    def __init__(self, weights: str | None = "imagenet", input_shape=(None, None, 3)):
        import keras

        vgg = keras.applications.VGG16(include_top=False, weights=weights, input_shape=tuple(input_shape))
        self.network = keras.Model(vgg.input, [vgg.get_layer(n).output for n in LPIPS_LAYERS],
                                   name="lpips_vgg16")
        self._preprocess = keras.applications.vgg16.preprocess_input

    def embed(self, images, batch_size: int = 16) -> list[np.ndarray]:
        """Unit-normalised features of ``[B, H, W, 3]`` RGB images in [0, 255]: one array per layer."""
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[np.newaxis]

        def run(batch):
            outputs = self.network(self._preprocess(batch.copy()), training=False)
            normed = []
            for f in outputs:
                f = np.asarray(f, np.float64)
                norm = np.sqrt(np.sum(f * f, axis=-1, keepdims=True))
                normed.append(f / (norm + 1e-10))
            return normed

        parts = list(_batched(run, images, batch_size))
        return [np.concatenate([p[k] for p in parts]) for k in range(len(LPIPS_LAYERS))]

    @staticmethod
    def distance_from_features(fa: Sequence[np.ndarray], fb: Sequence[np.ndarray]) -> np.ndarray:
        """Distances ``[B]`` between two (broadcastable) outputs of :meth:`embed`."""
        return sum(np.square(a - b).sum(axis=-1).mean(axis=(-2, -1)) for a, b in zip(fa, fb))

    def __call__(self, a, b, batch_size: int = 16) -> np.ndarray:
        """Distances ``[B]`` between ``a`` and ``b``, ``[B, H, W, 3]`` RGB in [0, 255]."""
        return self.distance_from_features(self.embed(a, batch_size), self.embed(b, batch_size))

    def pairwise_mean(self, features: Sequence[np.ndarray]) -> float:
        """Mean distance over all pairs of the images behind ``features`` (0 for fewer than 2)."""
        n = len(features[0])
        return mean_pairwise(range(n), lambda i, j: self.distance_from_features(
            [f[i] for f in features], [f[j] for f in features]))


class InceptionFeatures:
    """2048-d pool features of InceptionV3 for FID.

    Images are resized (bilinear) to ``image_size`` and scaled to [-1, 1]
    (``keras.applications.inception_v3.preprocess_input``).

    Args:
        weights: ``"imagenet"`` or None (random, for tests).
        image_size: Network input side; 299 as in FID, at least 75.
    """

    def __init__(self, weights: str | None = "imagenet", image_size: int = 299):
        import keras

        self.image_size = int(image_size)
        self.network = keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights=weights,
            input_shape=(self.image_size, self.image_size, 3))
        self._preprocess = keras.applications.inception_v3.preprocess_input

    def __call__(self, images, batch_size: int = 32) -> np.ndarray:
        """float64 ``[B, 2048]`` features of ``[B, H, W, 3]`` RGB images in [0, 255]."""
        import tensorflow as tf

        images = np.asarray(images, np.float32)

        def run(batch):
            x = tf.image.resize(batch, (self.image_size, self.image_size), method="bilinear")
            x = self._preprocess(np.array(x, np.float32))
            return np.asarray(self.network(x, training=False), np.float64)

        return np.concatenate(list(_batched(run, images, batch_size)))


def load_perceptual_networks(weights: str | None = "imagenet"
                             ) -> tuple[LPIPSDistance | None, InceptionFeatures | None, str | None]:
    """Builds the LPIPS and FID networks, or explains why it could not.

    Returns:
        ``(lpips, inception, None)``, or ``(None, None, reason)`` when the
        ImageNet weights could neither be found in ``~/.keras/models`` nor
        downloaded.
    """
    try:
        return LPIPSDistance(weights), InceptionFeatures(weights), None
    except Exception as exc:  # download failures come as several exception types
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # Keras's "URL fetch failure on <url>: <code> -- <reason>": keep the reason.
        message = message.rsplit(" -- ", 1)[-1]
        reason = (f"the ImageNet weights of VGG16/InceptionV3 are not in ~/.keras/models and "
                  f"could not be downloaded ({message}). "
                  "Keras downloads them there on first use: run once with internet "
                  "access, or copy vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 and "
                  "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 there")
        return None, None, reason
