"""How generated pixels join the known ones: the last step of every completion.

``paste`` is the reference's rule: the generator's output replaces the hole,
the known pixels stay as they are. The generator reproduces the known pixels
only loosely next to the hole (on MauFlex its output differs from them by
about 12 grey levels one pixel from the border, 4 at twenty), and its fill
continues *its own* version of the surroundings, so the border of a pasted
hole can show as a step: a seam (``metrics.seam_ratio``).

``poisson`` keeps the fill's gradients and moves it to meet the known pixels
(gradient-domain compositing, Pérez et al. 2003, "Poisson image editing"):
the fill becomes ``generated + d`` where ``d`` is the membrane (harmonic)
function on the hole whose values at the known pixels bordering it are
``known - generated``. The difference between the generator's version of the
surroundings and the real ones is spread smoothly over the hole instead of
being left as a step at its border; the fill's texture is unchanged. It is
solved with conjugate gradients on the hole (the image's edge is a
zero-gradient boundary), each image and channel on its own, in the graph, so
exported models blend as in-process ones do; the iterations grow with the
hole's width, not with the image.
"""

from __future__ import annotations

import tensorflow as tf

from piigan_tf.config import BLENDS  # noqa: F401  (the rules, the reference's first)

DEFAULT_BLEND = "paste"
#: Conjugate gradients stop for an image and channel once the residual's norm
#: is below this fraction of the right-hand side's.
TOLERANCE = 1e-4


def check_blend(blend: str) -> str:
    """``blend`` if it is one of :data:`BLENDS`; else ValueError naming them."""
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {', '.join(BLENDS)}; got {blend!r}")
    return blend


def model_blend(blend: str | None, config=None) -> str:
    """The rule a model uses: ``blend`` when given, else its config's ``BLEND``
    (paste without a config). ValueError for an unknown rule."""
    if blend is None:
        blend = config.BLEND if config is not None else DEFAULT_BLEND
    return check_blend(blend)


def _neighbour_sum(v: tf.Tensor) -> tf.Tensor:
    """Sum of the 4 neighbours of each pixel, 0 beyond the image's edge."""
    p = tf.pad(v, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]


def poisson_blend(generated: tf.Tensor, known: tf.Tensor, hole: tf.Tensor,
                  tolerance: float = TOLERANCE, max_iterations=None) -> tf.Tensor:
    """Moves ``generated`` in the hole to meet ``known`` at its border, keeping its gradients.

    Args:
        generated: float32 ``[B, H, W, C]``, the generator's output (any scale).
        known: float32 ``[B, H, W, C]``, the real pixels (same scale; only
            those outside the hole are read).
        hole: ``[B, H, W, 1]``, bool or numbers, non-zero = hole.
        tolerance: relative residual at which an image and channel stop.
        max_iterations: cap on the iterations (int32 scalar); default
            ``2 * (H + W)``, well above what a hole needs (about its width).

    Returns:
        float32 ``[B, H, W, C]``: ``generated + d`` in the hole, ``d`` harmonic
        there and equal to ``known - generated`` on the known pixels next to
        it; ``known`` elsewhere. Each image's result depends on its own inputs only.
    """
    generated = tf.convert_to_tensor(generated, tf.float32)
    known = tf.convert_to_tensor(known, tf.float32)
    hole = tf.convert_to_tensor(hole)
    if hole.dtype != tf.bool:
        hole = tf.not_equal(hole, tf.zeros([], hole.dtype))
    inside = tf.cast(hole, tf.float32)
    shape = tf.shape(generated)
    h, w = shape[1], shape[2]
    if max_iterations is None:
        max_iterations = 2 * (h + w)
    # Only the hole's pixels are unknowns and only their neighbours are read:
    # solve on the box around every hole of the batch with a pixel more on
    # each side (the image's own edge where the box reaches it).
    rows = tf.where(tf.reduce_any(inside > 0, axis=[0, 2, 3]))[:, 0]
    cols = tf.where(tf.reduce_any(inside > 0, axis=[0, 1, 3]))[:, 0]

    def solve():
        top = tf.maximum(tf.cast(tf.reduce_min(rows), tf.int32) - 1, 0)
        bottom = tf.minimum(tf.cast(tf.reduce_max(rows), tf.int32) + 2, h)
        left = tf.maximum(tf.cast(tf.reduce_min(cols), tf.int32) - 1, 0)
        right = tf.minimum(tf.cast(tf.reduce_max(cols), tf.int32) + 2, w)
        d = _membrane((known - generated)[:, top:bottom, left:right],
                      inside[:, top:bottom, left:right], tolerance, max_iterations)
        return tf.pad(d, [[0, 0], [top, h - bottom], [left, w - right], [0, 0]])

    d = tf.cond(tf.size(rows) > 0, solve, lambda: tf.zeros_like(generated))
    return inside * (generated + d) + (1.0 - inside) * known


def _membrane(difference: tf.Tensor, inside: tf.Tensor, tolerance: float,
              max_iterations) -> tf.Tensor:
    """The harmonic function on ``inside`` equal to ``difference`` on the known
    pixels next to it (0 outside), by conjugate gradients per image and channel."""
    outside = 1.0 - inside
    degree = _neighbour_sum(tf.ones_like(inside))   # neighbours within the image
    rhs = inside * _neighbour_sum(difference * outside)

    def apply(v):  # the hole's Laplacian (v is 0 outside the hole)
        return inside * (degree * v - _neighbour_sum(v))

    def dot(a, b):
        # Summed in float64, so that how far the box reaches past an image's
        # own hole (other images' holes widen it) does not change its result.
        return tf.cast(tf.reduce_sum(tf.cast(a * b, tf.float64), axis=[1, 2], keepdims=True),
                       tf.float32)

    limit = tolerance ** 2 * dot(rhs, rhs)

    def body(i, d, r, p, rr):
        active = rr > limit
        ap = apply(p)
        alpha = tf.where(active, tf.math.divide_no_nan(rr, dot(p, ap)), 0.0)
        d = d + alpha * p
        r = r - alpha * ap
        rr_next = dot(r, r)
        beta = tf.math.divide_no_nan(rr_next, rr)
        p = tf.where(active, r + beta * p, p)
        return i + 1, d, r, p, tf.where(active, rr_next, rr)

    def cond(i, d, r, p, rr):
        return tf.logical_and(i < max_iterations, tf.reduce_any(rr > limit))

    start = (tf.constant(0), tf.zeros_like(rhs), rhs, rhs, dot(rhs, rhs))
    return tf.while_loop(cond, body, start)[1]
