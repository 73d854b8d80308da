"""piigan_tf.metrics against hand-computed values and established implementations.

The LPIPS and FID networks are built with random weights (``weights=None``)
and small inputs: the ImageNet weights cannot be downloaded here, and the
tests check the maths, not the features.
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

from piigan_tf import metrics as M  # noqa: E402

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def rand_image(seed, shape=(24, 30, 3), low=0, high=256):
    return np.random.default_rng(seed).integers(low, high, shape).astype(np.uint8)


def box(shape_hw, top, left, h, w):
    mask = np.zeros((*shape_hw, 1), np.uint8)
    mask[top:top + h, left:left + w] = 1
    return mask


# -------------------------------------------------------------------- PSNR
def test_psnr_identical_is_inf_and_cap_handles_it():
    a = rand_image(0)
    assert M.psnr(a, a) == np.inf
    assert M.psnr(a, a, max_db=100.0) == 100.0
    assert M.psnr(a, a, box(a.shape[:2], 2, 3, 5, 5)) == np.inf


def test_psnr_known_shift():
    a = rand_image(1, low=20, high=200)
    b = a + np.uint8(10)  # MSE = 100 exactly
    expected = 10 * math.log10(255 ** 2 / 100)  # 28.1308 dB
    assert M.psnr(a, b) == pytest.approx(expected, abs=1e-9)
    assert M.psnr(a, b, max_val=1.0) == pytest.approx(10 * math.log10(1 / 100), abs=1e-9)
    # Shift only in a hole covering 1/4 of the image: the hole PSNR is still
    # 28.13 dB, the whole-image MSE is 100/4.
    mask = box((24, 30), 0, 0, 12, 15)
    c = np.where(mask > 0, b, a)
    assert M.psnr(a, c, mask) == pytest.approx(expected, abs=1e-9)
    assert M.psnr(a, c) == pytest.approx(10 * math.log10(255 ** 2 / 25), abs=1e-9)


def test_psnr_matches_skimage_and_tf_and_broadcasts():
    truth = rand_image(2)
    samples = np.stack([rand_image(s) for s in (3, 4, 5)])
    ours = M.psnr(truth, samples)
    assert ours.shape == (3,)
    for value, sample in zip(ours, samples):
        assert value == pytest.approx(peak_signal_noise_ratio(truth, sample, data_range=255), abs=1e-9)
    tf_value = tf.image.psnr(tf.constant(np.broadcast_to(truth, samples.shape)),
                             tf.constant(samples), max_val=255).numpy()
    np.testing.assert_allclose(ours, tf_value, atol=1e-4)


def test_empty_hole_gives_nan():
    a, b = rand_image(0), rand_image(1)
    empty = np.zeros((24, 30, 1), np.uint8)
    assert np.isnan(M.psnr(a, b, empty))
    assert np.isnan(M.l1(a, b, empty))
    assert np.isnan(M.hole_ssim(a, b, empty))
    assert np.isnan(M.total_variation(a, empty))
    assert np.isnan(M.pairwise_l1_diversity(np.stack([a, b]), empty))


# -------------------------------------------------------------------- SSIM
def test_ssim_identical_is_one_and_constant_images_match_the_formula():
    a = rand_image(6)
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    # Constant images: variances and covariance are 0, so SSIM is the
    # luminance term (2 μx μy + C1) / (μx² + μy² + C1).
    x = np.full((16, 16, 3), 100, np.uint8)
    y = np.full((16, 16, 3), 180, np.uint8)
    expected = (2 * 100 * 180 + C1) / (100 ** 2 + 180 ** 2 + C1)
    assert M.ssim(x, y) == pytest.approx(expected, abs=1e-9)


def test_ssim_matches_tf_image_ssim():
    truth = rand_image(7, (32, 40, 3))
    noisy = np.clip(truth.astype(int) + np.random.default_rng(8).integers(-40, 40, truth.shape),
                    0, 255).astype(np.uint8)
    samples = np.stack([noisy, rand_image(9, (32, 40, 3)), truth])
    ours = M.ssim(truth, samples)
    reference = tf.image.ssim(tf.constant(np.broadcast_to(truth, samples.shape), tf.float32),
                              tf.constant(samples, tf.float32), max_val=255.0,
                              filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03).numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    assert ours[2] == pytest.approx(1.0) and ours[0] > ours[1]
    with pytest.raises(ValueError, match="at least 11x11"):
        M.ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


def test_hole_box_grows_to_the_window_and_stays_inside():
    assert M.hole_box(box((40, 50), 10, 20, 4, 3)) == (10 - 3, 20 - 4, 14 + 4, 23 + 4)
    assert M.hole_box(box((40, 50), 0, 47, 2, 3)) == (0, 39, 11, 50)  # shifted inside
    assert M.hole_box(box((40, 50), 5, 5, 20, 30)) == (5, 5, 25, 35)  # big enough already
    assert M.hole_box(box((8, 50), 2, 2, 2, 2)) == (0, 0, 8, 11)      # image smaller than window
    assert M.hole_box(np.zeros((9, 9), bool)) is None


def test_hole_ssim_is_ssim_of_the_hole_box():
    truth, other = rand_image(10, (40, 40, 3)), rand_image(11, (40, 40, 3))
    mask = box((40, 40), 8, 12, 16, 20)
    expected = M.ssim(truth[8:24, 12:32], other[8:24, 12:32])
    assert M.hole_ssim(truth, other, mask) == pytest.approx(expected)
    assert M.hole_ssim(truth, truth, mask) == pytest.approx(1.0)


# ----------------------------------------------------------- L1 and TV
def test_l1_full_and_in_hole():
    a = np.zeros((10, 10, 3), np.uint8)
    b = np.full((10, 10, 3), 51, np.uint8)
    assert M.l1(a, b) == pytest.approx(0.2)
    mask = box((10, 10), 0, 0, 5, 10)
    c = np.where(mask > 0, b, a)
    assert M.l1(a, c, mask) == pytest.approx(0.2)
    assert M.l1(a, c) == pytest.approx(0.1)
    assert M.l1(a, a, mask) == 0.0


def test_colour_offset_hand_values_and_the_mse_it_explains():
    rng = np.random.default_rng(0)
    truth = rng.uniform(40, 200, (2, 16, 16, 3))
    mask = np.zeros((2, 16, 16, 1))
    mask[:, 4:12, 4:12] = 1
    assert np.all(M.colour_offset(truth, truth, mask) == 0)
    shifted = truth + np.array([3.0, 4.0, 0.0])  # the hole's mean moves by (3, 4, 0): 5 levels
    np.testing.assert_allclose(M.colour_offset(truth, shifted, mask), 5 / 255)
    np.testing.assert_allclose(M.colour_offset(shifted, truth, mask), 5 / 255)  # symmetric
    # Zero-mean texture inside the hole: a large L1, no colour offset.
    noise = rng.choice([-30.0, 30.0], (2, 8, 8, 3))
    noise -= noise.mean(axis=(1, 2), keepdims=True)
    textured = truth.copy()
    textured[:, 4:12, 4:12] += noise
    assert np.all(M.l1(truth, textured, mask) > 0.1)
    np.testing.assert_allclose(M.colour_offset(truth, textured, mask), 0, atol=1e-12)
    # Hole MSE = (255 * offset)^2 / 3 + the MSE left once the hole means agree.
    both = textured + np.array([3.0, 4.0, 0.0])
    offset = M.colour_offset(truth, both, mask)
    np.testing.assert_allclose(M.mse(truth, both, mask), (255 * offset) ** 2 / 3 + M.mse(truth, textured, mask))
    # Only the hole counts; an empty hole is NaN.
    outside = truth.copy()
    outside[:, :2] += 50
    assert np.all(M.colour_offset(truth, outside, mask) == 0)
    assert np.isnan(M.colour_offset(truth, shifted, np.zeros_like(mask))).all()


def test_total_variation_hand_values():
    assert M.total_variation(np.full((5, 6, 3), 77)) == 0.0
    checker = (np.indices((6, 7)).sum(axis=0) % 2 * 255)[..., None].repeat(3, axis=2)
    assert M.total_variation(checker) == pytest.approx(1.0)
    # Horizontal ramp of step 5: H (W-1) pairs differ by 5, (H-1) W pairs by 0.
    h, w = 4, 6
    ramp = np.broadcast_to(np.arange(w)[None, :, None] * 5, (h, w, 3))
    expected = 5 * h * (w - 1) / (h * (w - 1) + (h - 1) * w) / 255
    assert M.total_variation(ramp) == pytest.approx(expected)


def test_total_variation_matches_tf_and_masked_pairs_by_hand():
    x = rand_image(12, (9, 11, 3))
    pairs = 8 * 11 + 9 * 10
    assert M.total_variation(x) * pairs * 3 * 255 == pytest.approx(
        float(tf.image.total_variation(tf.constant(x, tf.float32))), rel=1e-6)
    # One hole pixel at (1, 1) in a 3x3 image: its 4 neighbour pairs count.
    img = np.zeros((3, 3, 1))
    img[1, 1] = 255
    img[0, 0] = 255  # a difference that touches no hole pixel: ignored
    mask = box((3, 3), 1, 1, 1, 1)
    assert M.total_variation(img, mask) == pytest.approx(1.0)
    # A batch of masks gives the same values as one shared mask.
    xs = np.stack([x, rand_image(13, (9, 11, 3))])
    m = box((9, 11), 2, 3, 4, 5)
    np.testing.assert_allclose(M.total_variation(xs, m), M.total_variation(xs, np.stack([m, m])))


# --------------------------------------------------------------- diversity
def test_diversity_hand_values():
    mask = box((12, 12), 3, 3, 6, 6)
    base = rand_image(14, (12, 12, 3))
    same = np.stack([base] * 4)
    assert M.pairwise_l1_diversity(same, mask) == 0.0
    assert M.pairwise_l1_diversity(base[None], mask) == 0.0  # N = 1
    # Three samples whose holes are 0, 10 and 30: pair distances 10, 30, 20.
    samples = np.stack([np.where(mask > 0, v, base) for v in (0, 10, 30)]).astype(np.uint8)
    assert M.pairwise_l1_diversity(samples, mask) == pytest.approx(20 / 255)
    # Differences outside the hole do not count.
    samples[1, 0, 0] = 255 - samples[1, 0, 0]
    assert M.pairwise_l1_diversity(samples, mask) == pytest.approx(20 / 255)


def test_best_of_n_and_mean_pairwise():
    values = np.array([[20.0, 25.0, np.nan], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(M.best_of_n(values), [25.0, np.nan])
    assert M.best_of_n([0.3, 0.1, 0.2], higher_is_better=False) == pytest.approx(0.1)
    assert M.mean_pairwise([1, 4, 6], lambda a, b: abs(a - b)) == pytest.approx((3 + 5 + 2) / 3)
    assert M.mean_pairwise([1], lambda a, b: 1.0) == 0.0


# --------------------------------------------------------------------- FID
def test_frechet_distance_closed_forms():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    # Diagonal covariances: |Δμ|² + Σ (σ1 − σ2)².
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert M.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected)
    # Σ2 = 4 Σ1 (commuting, full matrix): tr(Σ1 + 4Σ1 − 2·2Σ1) = tr(Σ1).
    a = np.random.default_rng(0).standard_normal((4, 4))
    sigma = a @ a.T + np.eye(4)
    assert M.frechet_distance(np.zeros(4), sigma, np.ones(4), 4 * sigma) == pytest.approx(
        4 + np.trace(sigma))
    assert M.frechet_distance(mu1, sigma[:3, :3], mu1, sigma[:3, :3]) == pytest.approx(0, abs=1e-9)


def test_fid_of_samples_matches_frechet_distance_and_closed_form():
    rng = np.random.default_rng(1)
    f1 = rng.standard_normal((30, 6))
    f2 = rng.standard_normal((25, 6)) @ rng.standard_normal((6, 6)) + 2.0
    # The nuclear-norm route equals the sqrtm route on the same statistics ...
    assert M.fid(f1, f2) == pytest.approx(
        M.frechet_distance(*M.feature_statistics(f1), *M.feature_statistics(f2)), rel=1e-8)
    # ... also with fewer samples than dimensions (singular covariances).
    g1, g2 = rng.standard_normal((5, 20)), rng.standard_normal((7, 20)) * 2
    assert M.fid(g1, g2) == pytest.approx(
        M.frechet_distance(*M.feature_statistics(g1), *M.feature_statistics(g2)), rel=1e-5)
    assert M.fid(f1, f1) == pytest.approx(0.0, abs=1e-9)
    # Large samples of N(0, I) and N(m, 4 I) in 3-D: 3 m² + 3 (1 − 2)².
    big1 = rng.standard_normal((40000, 3))
    big2 = 2 * rng.standard_normal((40000, 3)) + 0.5
    assert M.fid(big1, big2) == pytest.approx(3 * 0.25 + 3, rel=0.03)
    with pytest.raises(ValueError, match="at least 2"):
        M.fid(f1[:1], f2)


# ------------------------------------------------------- networks (random init)
@pytest.fixture(scope="module")
def lpips():
    return M.LPIPSDistance(weights=None, input_shape=(32, 32, 3))


def test_lpips_is_a_distance(lpips):
    x = np.stack([rand_image(s, (32, 32, 3)) for s in (20, 21)])
    y = np.stack([rand_image(s, (32, 32, 3)) for s in (22, 23)])
    np.testing.assert_allclose(lpips(x, x), 0.0, atol=1e-12)
    d_xy, d_yx = lpips(x, y), lpips(y, x)
    np.testing.assert_allclose(d_xy, d_yx, rtol=1e-12)
    assert np.all(d_xy > 0) and np.all(d_xy <= 2 * len(M.LPIPS_LAYERS))
    features = lpips.embed(np.stack([x[0], x[0], x[0]]))
    assert lpips.pairwise_mean(features) == pytest.approx(0.0, abs=1e-12)
    features = lpips.embed(np.stack([x[0], y[0]]))
    assert lpips.pairwise_mean(features) == pytest.approx(d_xy[0])
    # Unit-normalised features: every position has norm 1 (or 0 if all-zero).
    norms = np.linalg.norm(features[1], axis=-1)
    assert np.all((np.abs(norms - 1) < 1e-6) | (norms < 1e-6))


def test_inception_features_and_fid_of_identical_sets():
    inception = M.InceptionFeatures(weights=None, image_size=75)
    images = np.stack([rand_image(s, (32, 32, 3)) for s in range(6)])
    features = inception(images, batch_size=4)
    assert features.shape == (6, 2048) and features.dtype == np.float64
    # Batch size changes the kernels' summation order (oneDNN blocks by batch):
    # equal up to float32 rounding of the features (~1e-4 of each value).
    np.testing.assert_allclose(inception(images[:2]), features[:2], rtol=1e-3, atol=1e-8)
    assert M.fid(features, features) == pytest.approx(0.0, abs=1e-9 * max(1.0, features.var()))
    shifted = inception(np.clip(images.astype(int) // 3, 0, 255))
    assert M.fid(features, shifted) > 0


def test_unavailable_weights_are_reported_not_raised(tmp_path):
    lpips, inception, reason = M.load_perceptual_networks(str(tmp_path / "missing.h5"))
    assert lpips is None and inception is None
    assert "could not be downloaded" in reason and "~/.keras/models" in reason


# ------------------------------------------------------- texture: TV ratio, SWD
def _texture(seed=0, size=256):
    """A public-domain texture (scikit-image's grass), or a seeded random one."""
    from skimage import data

    try:
        tex = data.grass()
    except Exception:  # noqa: BLE001 - older scikit-image: any textured image does
        rng = np.random.default_rng(seed)
        tex = (rng.random((size, size)) * 255).astype(np.uint8)
    return np.repeat(tex[..., None], 3, axis=-1)


def _hole_sets(fill, num=24, size=64, seed=0):
    """Patch descriptors of real windows and of ``fill(real, other)`` in a centred hole."""
    import cv2  # noqa: F401 - the pyramid needs it

    tex = _texture()
    rng = np.random.default_rng(seed)
    mask = box((size, size), size // 4, size // 4, size // 2, size // 2)
    real_sets, fake_sets, real_tv, fake_tv = [[], [], []], [[], [], []], [], []
    for _ in range(num):
        y, x = rng.integers(0, tex.shape[0] - 2 * size, 2)
        real = tex[y:y + size, x:x + size]
        other = tex[y + size:y + 2 * size, x + size // 2:x + size // 2 + size]
        fake = np.where(mask > 0, fill(real, other), real).astype(np.uint8)
        positions = M.hole_patch_positions(mask, rng)
        for level, (a, b) in enumerate(zip(M.hole_patch_descriptors(real, positions),
                                           M.hole_patch_descriptors(fake, positions))):
            real_sets[level].append(a)
            fake_sets[level].append(b)
        real_tv.append(M.total_variation(real, mask, within_hole=True))
        fake_tv.append(M.total_variation(fake, mask, within_hole=True))
    return ([np.concatenate(s) for s in real_sets], [np.concatenate(s) for s in fake_sets],
            real_tv, fake_tv)


def test_swd_is_zero_for_identical_sets_and_symmetric():
    real, fake, _, _ = _hole_sets(lambda real, other: other)
    same, per_level = M.sliced_wasserstein_distance(real, [r.copy() for r in real])
    assert same == 0.0 and per_level == [0.0, 0.0, 0.0]
    ab, ab_levels = M.sliced_wasserstein_distance(real, fake)
    ba, ba_levels = M.sliced_wasserstein_distance(fake, real)
    assert ab > 0
    assert ab == pytest.approx(ba, rel=1e-9) and ab_levels == pytest.approx(ba_levels, rel=1e-9)
    # Sets of different sizes are compared at the smaller one's quantiles.
    fewer = [f[: len(f) // 2] for f in fake]
    assert M.sliced_wasserstein_distance(real, fewer)[0] == pytest.approx(
        M.sliced_wasserstein_distance(fewer, real)[0], rel=1e-9)


def test_sliced_wasserstein_of_one_direction_is_the_1d_distance():
    # The 1-D distance of two shifted point sets is the shift.
    x = np.arange(10, dtype=np.float64)[:, None]
    assert M._sliced_wasserstein(x, x + 2.5, np.ones((1, 1))) == pytest.approx(2.5)


def test_swd_ranks_a_blurred_copy_farther_than_a_shifted_crop():
    import cv2

    real, shifted, _, _ = _hole_sets(lambda real, other: other)
    _, blurred, _, _ = _hole_sets(lambda real, other: cv2.GaussianBlur(other, (0, 0), 1.5))
    _, flat, _, _ = _hole_sets(lambda real, other: np.full_like(other, int(real.mean())))
    d_shift = M.sliced_wasserstein_distance(real, shifted)[0]
    d_blur = M.sliced_wasserstein_distance(real, blurred)[0]
    d_flat = M.sliced_wasserstein_distance(real, flat)[0]
    assert d_shift < d_blur < d_flat
    assert d_blur > 3 * d_shift
    # Same texture from another place is near the noise floor of the real set.
    floor = M.swd_noise_floor(real)
    assert 0 < floor and d_shift < 2 * floor


def test_texture_ratio_of_smooth_fill_is_below_one_and_real_texture_near_one():
    import cv2

    _, _, real_tv, shifted_tv = _hole_sets(lambda real, other: other)
    _, _, _, blurred_tv = _hole_sets(lambda real, other: cv2.GaussianBlur(other, (0, 0), 1.5))
    _, _, _, flat_tv = _hole_sets(lambda real, other: np.full_like(other, int(real.mean())))
    assert M.texture_ratio(real_tv, real_tv) == pytest.approx(1.0)
    assert 0.8 < M.texture_ratio(shifted_tv, real_tv) < 1.25
    assert M.texture_ratio(blurred_tv, real_tv) < 0.6
    assert M.texture_ratio(flat_tv, real_tv) < M.texture_ratio(blurred_tv, real_tv)
    assert math.isnan(M.texture_ratio([0.1], [0.0]))
    assert M.texture_ratio([0.2, np.nan], [0.1, 0.1]) == pytest.approx(2.0)


def test_hole_patch_positions_stay_in_the_hole_and_image():
    mask = box((64, 80), 10, 20, 32, 40)
    positions = M.hole_patch_positions(mask, np.random.default_rng(0), per_image=2000)
    for level, (rows, cols) in enumerate(positions):
        f = 2 ** level
        assert rows.size > 0
        # the whole 7x7 patch lies in the hole of its level (blocks of f x f hole pixels)
        assert ((rows - 3) * f >= 10).all() and ((rows + 4) * f <= 42).all()
        assert ((cols - 3) * f >= 20).all() and ((cols + 4) * f <= 60).all()
    assert len(positions[0][0]) == 26 * 34  # all centres when fewer than per_image
    # At a quarter of the size the hole is 7 x 10 whole blocks: 1 x 4 patch centres.
    assert len(positions[2][0]) == 1 * 4
    small = M.hole_patch_positions(mask, np.random.default_rng(0), per_image=5)
    assert [len(r) for r, _ in small] == [5, 5, 4]  # at most per_image a level
    empty = M.hole_patch_positions(np.zeros((32, 32, 1)), np.random.default_rng(0))
    assert all(r.size == 0 for r, _ in empty)


def test_total_variation_within_hole_leaves_out_the_seam():
    image = rand_image(2, (20, 20, 3))
    mask = box((20, 20), 5, 5, 10, 10)
    flat = np.where(mask > 0, np.uint8(128), image)
    assert M.total_variation(flat, mask, within_hole=True) == 0.0  # a flat fill has no texture
    assert M.total_variation(flat, mask) > 0.02  # but a seam with the noise around it
    # By hand: pairs of hole pixels only (9 x 10 vertical + 10 x 9 horizontal).
    x = image.astype(np.float64)[5:15, 5:15]
    expected = (np.abs(np.diff(x, axis=0)).sum() + np.abs(np.diff(x, axis=1)).sum()) / (180 * 3) / 255
    assert M.total_variation(image, mask, within_hole=True) == pytest.approx(expected)


def test_laplacian_pyramid_reconstructs_the_image():
    import cv2

    image = rand_image(5, (32, 48, 3)).astype(np.float32)
    levels = M.laplacian_pyramid(image, 3)
    assert [lv.shape for lv in levels] == [(32, 48, 3), (16, 24, 3), (8, 12, 3)]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = cv2.pyrUp(rebuilt, dstsize=(band.shape[1], band.shape[0])) + band
    np.testing.assert_allclose(rebuilt, image, atol=1e-3)


def test_border_steps_by_hand_and_in_every_direction():
    # One column of a 6 x 1 image, hole rows 0-2 (p0 = row 1, p = row 2), known rows 3-5.
    column = np.array([0, 10, 30, 70, 80, 100], np.float64)[:, None, None] * np.ones((1, 1, 3))
    mask = np.zeros((6, 1))
    mask[:3] = 1
    across, beside = M.border_steps(column, mask)
    assert float(across) == pytest.approx(40 / 255)  # |70 - 30|
    assert float(beside) == pytest.approx((20 + 10) / 2 / 255)  # |30 - 10| and |80 - 70|
    # The same crossing read upwards, leftwards and rightwards gives the same steps.
    for image, hole in ((column[::-1], mask[::-1]), (np.swapaxes(column, 0, 1), mask.T),
                        (np.swapaxes(column, 0, 1)[:, ::-1], mask.T[:, ::-1])):
        a, b = M.border_steps(image, hole)
        assert (float(a), float(b)) == pytest.approx((float(across), float(beside)))
    # Leading dimensions are images; one without crossings gives NaN.
    both = M.border_steps(np.stack([column, column * 0.5]), mask)
    np.testing.assert_allclose(both[0], [40 / 255, 20 / 255])
    assert all(np.isnan(v) for v in M.border_steps(column, np.zeros((6, 1))))


def test_seam_ratio_is_near_one_for_real_images_and_above_one_for_a_seam():
    import cv2

    tex = _texture().astype(np.float64)
    mask = box((64, 64), 16, 16, 32, 32)
    rng = np.random.default_rng(0)
    real, brighter, smooth = [], [], []
    for _ in range(24):
        y, x = rng.integers(0, tex.shape[0] - 64, 2)
        window = tex[y:y + 64, x:x + 64]
        real.append(window)
        # the real texture, 40 grey levels brighter inside the hole: a step at its border
        brighter.append(np.where(mask > 0, np.clip(window + 40, 0, 255), window))
        filled = cv2.inpaint(window.astype(np.uint8), mask.astype(np.uint8)[..., 0], 3,
                             cv2.INPAINT_TELEA)
        smooth.append(filled.astype(np.float64))
    ratio = {name: M.seam_ratio(*M.border_steps(np.stack(images), mask))
             for name, images in (("real", real), ("brighter", brighter), ("smooth", smooth))}
    assert 0.9 < ratio["real"] < 1.1
    assert ratio["brighter"] > 1.5 * ratio["real"]
    # A smear starts as a continuation of the border: no seam, it shows as lost texture.
    assert ratio["smooth"] < 1.1
    assert math.isnan(M.seam_ratio([0.1], [0.0]))
    assert M.seam_ratio([0.2, np.nan], [0.1, 0.3]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="one mask"):
        M.border_steps(np.stack(real[:2]), np.stack([mask, mask]))
