"""Losses against hand-computed values on tiny arrays."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf import losses as L  # noqa: E402


def t(values, shape=None):
    x = tf.constant(values, tf.float32)
    return tf.reshape(x, shape) if shape is not None else x


# ------------------------------------------------------------------ L1 terms
def test_masked_l1_hand_computed():
    # One sample, two pixels, one channel; pixel 2 is the hole.
    real = t([0.5, -0.5], [1, 1, 2, 1])
    coarse = t([0.0, 0.5], [1, 1, 2, 1])
    refined = t([0.25, 0.0], [1, 1, 2, 1])
    masks = t([0.0, 1.0], [1, 1, 2, 1])
    # mean(|x-x1|(1-m)) = (0.5 + 0)/2 = 0.25; mean(|x-x2|(1-m)) = (0.25 + 0)/2 = 0.125
    # mean(1-m) = 0.5  ->  (1.2 * 0.25 + 0.125) / 0.5 = 0.85
    got = L.masked_l1(real, coarse, refined, masks, coarse_alpha=1.2)
    assert math.isclose(float(got), 0.85, rel_tol=1e-6)


def test_masked_l1_three_channels_and_hole_ignored():
    # 3-channel images with a 1-channel mask (broadcast), two samples.
    real = np.zeros((2, 2, 2, 3), np.float32)
    coarse = np.zeros_like(real)
    refined = np.zeros_like(real)
    masks = np.zeros((2, 2, 2, 1), np.float32)
    masks[0, 0, 0] = 1.0                      # one hole pixel in sample 0
    coarse[0, 0, 0] = 100.0                    # error inside the hole: ignored
    coarse[1, 1, 1] = [1.0, 2.0, 3.0]          # known pixel: counted
    refined[1, 0, 1] = [-3.0, 0.0, 0.0]        # known pixel: counted
    # sum|x-x1|(1-m) = 6, sum|x-x2|(1-m) = 3, over 24 elements; mean(1-m) = 7/8
    expected = (2.0 * 6 / 24 + 3 / 24) / (7 / 8)
    got = L.masked_l1(t(real), t(coarse), t(refined), t(masks), coarse_alpha=2.0)
    assert math.isclose(float(got), expected, rel_tol=1e-6)


def test_box_l1_hand_computed():
    real = t([1.0, 2.0], [1, 1, 2, 1])
    coarse = t([0.0, 2.0], [1, 1, 2, 1])
    refined = t([1.0, 1.0], [1, 1, 2, 1])
    # 1.2 * (mean[1, 0] + mean[0, 1]) = 1.2 * (0.5 + 0.5) = 1.2
    assert math.isclose(float(L.box_l1(real, coarse, refined, 1.2)), 1.2, rel_tol=1e-6)
    # The weight scales both terms (coarse and refined), as in the reference.
    assert math.isclose(float(L.box_l1(real, coarse, refined, 2.0)), 2.0, rel_tol=1e-6)


def test_regress_z_hand_computed_row_major():
    mu_fake = t([[0.5, -1.0, 2.0, 0.0]])                 # [B=1, h*w=4]
    z_box = t([[[[0.0], [0.0]], [[1.0], [1.0]]]])        # [1, 2, 2, 1]; flat [0, 0, 1, 1]
    # |0.5-0|, |-1-0|, |2-1|, |0-1| = 0.5, 1, 1, 1 -> mean 0.875 -> * 1.2 = 1.05
    assert math.isclose(float(L.regress_z(mu_fake, z_box, 1.2)), 1.05, rel_tol=1e-6)


def test_kl_hand_computed_and_is_a_sum():
    mu = t([[0.0, 1.0]])
    logvar = t([[0.0, math.log(2.0)]])
    # terms: 1 + 0 - 0 - 1 = 0 ; 1 + ln2 - 1 - 2 = ln2 - 2 ; -0.5 * (ln2 - 2) = 1 - ln2/2
    expected = 1.0 - math.log(2.0) / 2.0
    assert math.isclose(float(L.kl_divergence(mu, logvar)), expected, rel_tol=1e-6)
    # Doubling the batch doubles it (sum, not mean).
    mu2, logvar2 = tf.tile(mu, [2, 1]), tf.tile(logvar, [2, 1])
    assert math.isclose(float(L.kl_divergence(mu2, logvar2)), 2 * expected, rel_tol=1e-6)
    # Standard normal has zero KL.
    assert float(L.kl_divergence(tf.zeros([3, 5]), tf.zeros([3, 5]))) == 0.0


def test_wgan_losses_hand_computed():
    real = t([[1.0], [3.0]])
    fake = t([[-1.0], [2.0]])
    g, d = L.wgan_losses(real, fake)
    assert math.isclose(float(g), -0.5)          # -mean(fake)
    assert math.isclose(float(d), 0.5 - 2.0)     # mean(fake) - mean(real)


# ------------------------------------------------------------------ GP
def test_random_interpolates_per_sample_alpha():
    real = tf.zeros([2, 2, 2, 3])
    fake = tf.ones([2, 2, 2, 3]) * 4.0
    got = L.random_interpolates(real, fake, t([0.25, 0.75])).numpy()
    np.testing.assert_array_equal(got[0], 1.0)
    np.testing.assert_array_equal(got[1], 3.0)
    # [B, 1, 1, 1] alpha is accepted too; alpha 0 -> real, 1 -> fake.
    got = L.random_interpolates(real + 2.0, fake, t([0.0, 1.0], [2, 1, 1, 1])).numpy()
    np.testing.assert_array_equal(got[0], 2.0)
    np.testing.assert_array_equal(got[1], 4.0)


# Linear critic D(x) = sum(w * x): its input gradient is w at every x.
W = np.zeros((1, 2, 3), np.float32)
W[0, 0] = [1.0, 2.0, 2.0]   # |.|^2 = 9
W[0, 1] = [2.0, 4.0, 4.0]   # |.|^2 = 36


def linear_critic(x):
    return tf.reduce_sum(x * W, axis=[1, 2, 3])[:, None]


def test_gradient_penalty_linear_critic_no_mask():
    x = tf.random.stateless_normal([2, 1, 2, 3], seed=[1, 2])
    # slope = sqrt(9 + 36) for both samples
    expected = (math.sqrt(45.0) - 1.0) ** 2
    assert math.isclose(float(L.gradient_penalty(linear_critic, x)), expected, rel_tol=1e-6)


def test_gradient_penalty_linear_critic_with_mask():
    x = tf.random.stateless_normal([2, 1, 2, 3], seed=[3, 4])
    masks = t([[1.0, 0.0], [0.0, 1.0]], [2, 1, 2, 1])
    # sample 0 sees pixel 0: slope 3 -> (3-1)^2 = 4; sample 1 pixel 1: slope 6 -> 25
    got = L.gradient_penalty(linear_critic, x, masks)
    assert math.isclose(float(got), (4.0 + 25.0) / 2.0, rel_tol=1e-6)


def test_gradient_penalty_norm_argument():
    x = tf.zeros([2, 1, 2, 3])
    got = L.gradient_penalty(linear_critic, x, norm=3.0)
    assert math.isclose(float(got), (math.sqrt(45.0) - 3.0) ** 2, rel_tol=1e-6)


def test_gradient_penalty_quadratic_critic():
    # D(x) = sum(x^2) / 2 -> dD/dx = x: slopes are the norms of the interpolates.
    def critic(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])[:, None]

    x = np.zeros((2, 1, 2, 3), np.float32)
    x[0, 0, 0] = [3.0, 0.0, 0.0]
    x[0, 0, 1] = [0.0, 4.0, 0.0]   # |x_0| = 5 -> (5-1)^2 = 16
    x[1, 0, 1] = [0.0, 0.0, 2.0]   # |x_1| = 2 -> 1
    assert math.isclose(float(L.gradient_penalty(critic, t(x))), (16.0 + 1.0) / 2, rel_tol=1e-6)
    # Masking pixel 1 out of sample 0: slope 3 -> 4; sample 1 keeps pixel 1 only -> 1.
    masks = t([[1.0, 0.0], [0.0, 1.0]], [2, 1, 2, 1])
    assert math.isclose(float(L.gradient_penalty(critic, t(x), masks)), (4.0 + 1.0) / 2,
                        rel_tol=1e-6)
    # Zero gradient in the hole: slope = sqrt(eps) ~ 0, penalty (0-1)^2 = 1.
    got = L.gradient_penalty(critic, tf.zeros([2, 1, 2, 3]))
    assert math.isclose(float(got), 1.0, rel_tol=1e-5)


def test_gradient_penalty_differentiable_wrt_critic_weights():
    w = tf.Variable(W)

    def critic(x):
        return tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None]

    x = tf.ones([2, 1, 2, 3])
    masks = t([[1.0, 0.0], [0.0, 1.0]], [2, 1, 2, 1])
    with tf.GradientTape() as tape:
        gp = L.gradient_penalty(critic, x, masks)
    grad = tape.gradient(gp, w).numpy()
    # d/dw of mean((|w_p| - 1)^2) over the two samples' pixels p:
    # sample 0: 2 (3-1) w_0 / 3 / 2 ; sample 1: 2 (6-1) w_1 / 6 / 2
    expected = np.zeros_like(W)
    expected[0, 0] = (3 - 1) / 3 * W[0, 0]
    expected[0, 1] = (6 - 1) / 6 * W[0, 1]
    np.testing.assert_allclose(grad, expected, rtol=1e-5)


def test_gradient_penalty_gradient_finite_when_mask_empty():
    # Without eps under the sqrt, d sqrt(0) would be inf * 0 = NaN.
    w = tf.Variable(W)

    def critic(x):
        return tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None]

    with tf.GradientTape() as tape:
        gp = L.gradient_penalty(critic, tf.ones([2, 1, 2, 3]), tf.zeros([2, 1, 2, 1]))
    grad = tape.gradient(gp, w).numpy()
    assert math.isclose(float(gp), 1.0, rel_tol=1e-5)
    assert np.all(np.isfinite(grad))


# ------------------------------------------------------------------ total
TERMS = {"g_adv": 2.0, "kl": 3.0, "l1_zx": 5.0, "ae_zx": 7.0, "ae": 11.0, "regress_z": 13.0}


def test_generator_total_hand_computed():
    terms = {k: tf.constant(v) for k, v in TERMS.items()}
    # 0.5*2 + 0.1*3 + 1.2*(5+7) + 2*11 + 1.2*13 = 1 + 0.3 + 14.4 + 22 + 15.6 = 53.3
    got = L.generator_total(terms, gan_alpha=0.5, kl_weight=0.1, regress_alpha=1.2, ae_alpha=2.0)
    assert math.isclose(float(got), 53.3, rel_tol=1e-6)
    got = L.generator_total(terms, 0.5, 0.1, 1.2, 2.0, use_ae=False)
    assert math.isclose(float(got), 53.3 - 22.0, rel_tol=1e-6)
    got = L.generator_total(terms, 0.5, 0.1, 1.2, 2.0, use_regress=False)
    assert math.isclose(float(got), 53.3 - 15.6, rel_tol=1e-6)
    got = L.generator_total(terms, 0.5, 0.1, 1.2, 2.0, use_ae=False, use_regress=False)
    assert math.isclose(float(got), 1.0 + 0.3 + 14.4, rel_tol=1e-6)


@pytest.mark.parametrize("alpha", [1.2, 0.5])
def test_regress_z_is_weighted_twice_in_total(alpha):
    mu_fake = t([[0.5, -1.0, 2.0, 0.0]])
    z_box = t([[[[0.0], [0.0]], [[1.0], [1.0]]]])   # mean abs difference 0.875
    terms = {k: tf.constant(0.0) for k in TERMS}
    terms["regress_z"] = L.regress_z(mu_fake, z_box, alpha)
    total = L.generator_total(terms, 0.001, 0.1, regress_alpha=alpha, ae_alpha=1.2)
    assert math.isclose(float(total), alpha * alpha * 0.875, rel_tol=1e-6)


def test_reference_default_weights_total():
    # The reference weights (GAN 0.001, KL 0.1, REGRESSION_Z 1.2, AE 1.2):
    # 0.002 + 0.3 + 14.4 + 13.2 + 15.6 = 43.502
    terms = {k: tf.constant(v) for k, v in TERMS.items()}
    got = L.generator_total(terms, 0.001, 0.1, 1.2, 1.2)
    assert math.isclose(float(got), 43.502, rel_tol=1e-6)
