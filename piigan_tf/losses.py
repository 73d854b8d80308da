"""PiiGAN losses as pure functions.

Each function takes tensors and numbers (never the config) and returns a
scalar. Reductions follow the reference (neuralgym ``gan_wgan_loss`` and
``gradients_penalty``, PiiGAN ``model.py``): means over all elements, except
the KL term, which the reference **sums** over batch and dimensions.

Image tensors are [B, H, W, 3] in [-1, 1]; masks [B, H, W, 1], 1 = hole.
"""

from __future__ import annotations

import tensorflow as tf


def masked_l1(real, coarse, refined, masks, coarse_alpha: float, known_fraction=None):
    """The reference's ``ae_loss``: L1 on the *known* pixels, coarse weighted.

    ``[a * mean(|x - x1| (1 - m)) + mean(|x - x2| (1 - m))] / mean(1 - m)``

    Used for ``ae`` (with x1, x2 from random z) and ``ae_zx`` (with x1, x2
    from the extractor's z). ``known_fraction`` replaces ``mean(1 - m)``; a
    distributed step passes the global batch's, so that the replicas' losses
    add up to the single-device loss.
    """
    known = 1.0 - masks
    loss = coarse_alpha * tf.reduce_mean(tf.abs(real - coarse) * known)
    loss += tf.reduce_mean(tf.abs(real - refined) * known)
    if known_fraction is None:
        known_fraction = tf.reduce_mean(known)
    return loss / known_fraction


def box_l1(real_box, coarse_box, refined_box, coarse_alpha: float):
    """``l1_zx``: ``a * (mean|x - x1| + mean|x - x2|)`` over the hole box."""
    return coarse_alpha * (tf.reduce_mean(tf.abs(real_box - coarse_box))
                           + tf.reduce_mean(tf.abs(real_box - refined_box)))


def regress_z(mu_fake, z_box, alpha: float):
    """``l1_regress_z_loss``: ``alpha * mean|mu(completed box) - z(box)|``.

    The reference multiplies by REGRESSION_Z_LOSS_ALPHA here *and* again when
    it adds the term to the generator loss; ``generator_total`` keeps that.
    """
    z_flat = tf.reshape(z_box, tf.shape(mu_fake))
    return alpha * tf.reduce_mean(tf.abs(mu_fake - z_flat))


def kl_divergence(mu, logvar):
    """``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))``, a sum over batch and dims."""
    return -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar))


def wgan_losses(real_scores, fake_scores):
    """WGAN losses of one critic: ``(g, d) = (-mean(fake), mean(fake) - mean(real))``."""
    g = -tf.reduce_mean(fake_scores)
    d = tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)
    return g, d


def random_interpolates(real, fake, alpha):
    """``real + alpha (fake - real)`` with one alpha per sample ([B] or [B,1,1,1])."""
    alpha = tf.reshape(tf.cast(alpha, real.dtype), [-1, 1, 1, 1])
    return real + alpha * (fake - real)


def gradient_penalty(critic, interpolates, masks=None, norm: float = 1.0, eps: float = 1e-12):
    """Masked WGAN-GP penalty (Gulrajani et al. 2017, arXiv:1704.00028).

    ``slope = sqrt(sum_{H,W,C} (dD/dx)^2 * mask)`` per sample;
    ``penalty = mean((slope - norm)^2)``. The reference restricts the sum to
    the hole (``mask``). ``eps`` under the square root keeps the gradient of
    the penalty finite when the critic's gradient vanishes in the hole (the
    reference has none; 1e-12 changes no value measurably).

    Args:
        critic: callable images -> scores [B, 1].
        interpolates: [B, H, W, C] points between real and fake.
        masks: [B, H, W, 1] or None (all ones).

    Returns:
        scalar penalty (float32).
    """
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = critic(interpolates)
    grads = tf.cast(tape.gradient(scores, interpolates), tf.float32)
    sq = tf.square(grads)
    if masks is not None:
        sq = sq * tf.cast(masks, tf.float32)
    slopes = tf.sqrt(tf.reduce_sum(sq, axis=[1, 2, 3]) + eps)
    return tf.reduce_mean(tf.square(slopes - norm))


def generator_total(terms: dict, gan_alpha: float, kl_weight: float, regress_alpha: float,
                    ae_alpha: float, use_ae: bool = True, use_regress: bool = True):
    """The reference's ``g_loss`` sum.

    ``gan_alpha*g_adv + kl_weight*kl + regress_alpha*(l1_zx + ae_zx)
    + ae_alpha*ae + regress_alpha*regress_z`` (ae and regress_z switchable,
    as AE_LOSS and REGRESSION_Z_LOSS in the reference).
    """
    total = gan_alpha * terms["g_adv"] + kl_weight * terms["kl"]
    total += regress_alpha * (terms["l1_zx"] + terms["ae_zx"])
    if use_ae:
        total += ae_alpha * terms["ae"]
    if use_regress:
        total += regress_alpha * terms["regress_z"]
    return total
