"""Style extractor E: maps the hole box of an image to the mean and log-variance of z."""

from __future__ import annotations

import keras
import tensorflow as tf

from piigan_tf.networks.generator import _track_by_name

ACTIVATIONS = ("elu", "leaky_relu")


class Extractor(keras.Model):
    """``build_extractor``: four 5x5 stride-2 convs, then two dense heads.

    Call with the hole box ``[B, h, w, 3]`` in [-1, 1] (64x64 at the reference
    size). Returns ``(mu, logvar)``, each ``[B, h*w]``: one Gaussian per pixel
    of the box, so a sample reshapes to the ``[B, h, w, 1]`` noise the generator
    takes.

    Args:
        box_hw: (h, w) of the hole box.
        activation: ``"elu"`` (the paper; default) or ``"leaky_relu"`` (slope
            0.2, what the reference code runs).
    """

    def __init__(self, box_hw=(64, 64), activation: str = "elu", cnum: int = 64,
                 name: str = "build_extractor", **kwargs):
        super().__init__(name=name, **kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.box_hw = tuple(int(v) for v in box_hw)
        self.activation = activation
        self.cnum = cnum
        self.convs = [
            keras.layers.Conv2D(m * cnum, 5, strides=2, padding="same", name=f"conv{i + 1}",
                                dtype=self.dtype_policy)  # sublayers take this model's policy
            for i, m in enumerate((1, 2, 4, 4))
        ]
        _track_by_name(self, self.convs)
        size = self.box_hw[0] * self.box_hw[1]
        self.mu_head = keras.layers.Dense(size, name="z", dtype=self.dtype_policy)
        self.logvar_head = keras.layers.Dense(size, name="z_var", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.call(tf.zeros([1, *self.box_hw, 3]))

    def call(self, boxes):
        x = tf.cast(boxes, self.compute_dtype)
        for conv in self.convs:
            x = conv(x)
            x = tf.nn.elu(x) if self.activation == "elu" else tf.nn.leaky_relu(x, 0.2)
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        return self.mu_head(x), self.logvar_head(x)

    def get_config(self):
        return {"box_hw": self.box_hw, "activation": self.activation, "cnum": self.cnum,
                "name": self.name}


def sample_z(mu, logvar, eps):
    """Reparameterisation ``z = mu + exp(logvar / 2) * eps``.

    The reference computes ``std = mu + exp(logvar/2)*eps; z = mu + std*eps``,
    a slip; the port uses the standard form (listed in the README).
    """
    return mu + tf.exp(logvar / 2.0) * eps
