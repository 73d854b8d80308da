"""WGAN-GP critics: local (on the hole box) and global (on the whole image)."""

from __future__ import annotations

import keras
import tensorflow as tf

from piigan_tf.networks.generator import _track_by_name


def leaky_relu(x, alpha: float = 0.2):
    """Leaky ReLU whose derivative is a constant of the forward pass.

    Same values and first derivative as ``tf.nn.leaky_relu``. The WGAN-GP
    penalty differentiates the critic's input gradient, in which leaky ReLU
    contributes its slope (1 or alpha). ``tf.nn.leaky_relu``'s second
    derivative is zero but TensorFlow still back-propagates that zero through
    every conv of the forward pass (two full conv passes of wasted work per
    penalty); here the slope is read from the *output* behind
    ``stop_gradient`` (its sign is the input's), so that path does not exist.
    Reading the output, not the input, also lets Grappler fuse conv + bias +
    leaky ReLU into one oneDNN kernel: the pre-activation is never kept.
    """
    alpha = float(alpha)

    @tf.custom_gradient
    def forward(x):
        y = tf.nn.leaky_relu(x, alpha)

        def grad(dy):
            return tf.raw_ops.LeakyReluGrad(gradients=dy, features=tf.stop_gradient(y), alpha=alpha)

        return y, grad

    return forward(x)


class Critic(keras.Model):
    """Stack of ``dconv`` (5x5 conv, stride 2, SAME, leaky ReLU 0.2), flatten, Dense(1).

    Args:
        multipliers: channel multipliers of the four convs (x64): local critic
            (1, 2, 4, 8), global critic (1, 2, 4, 4).
        input_hw: (h, w) of the input, fixed because of the dense layer.
        name: ``discriminator_local`` or ``discriminator_global``.
        fc_name: ``dout_local_fc`` or ``dout_global_fc`` (reference names).
    """

    def __init__(self, multipliers, input_hw, name: str, fc_name: str, cnum: int = 64,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.multipliers = tuple(multipliers)
        self.input_hw = tuple(int(v) for v in input_hw)
        self.fc_name = fc_name
        self.cnum = cnum
        self.convs = [
            keras.layers.Conv2D(m * cnum, 5, strides=2, padding="same", name=f"conv{i + 1}",
                                dtype=self.dtype_policy)  # sublayers take this model's policy
            for i, m in enumerate(self.multipliers)
        ]
        _track_by_name(self, self.convs)
        self.fc = keras.layers.Dense(1, name=fc_name, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.call(tf.zeros([1, *self.input_hw, 3]))

    def call(self, images):
        """images: [B, h, w, 3] in [-1, 1] -> scores [B, 1] (float32)."""
        x = tf.cast(images, self.compute_dtype)
        for conv in self.convs:
            x = leaky_relu(conv(x), 0.2)
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        return tf.cast(self.fc(x), "float32")

    def get_config(self):
        return {"multipliers": self.multipliers, "input_hw": self.input_hw, "name": self.name,
                "fc_name": self.fc_name, "cnum": self.cnum}


def local_critic(box_hw=(64, 64), dtype=None) -> Critic:
    return Critic((1, 2, 4, 8), box_hw, "discriminator_local", "dout_local_fc", dtype=dtype)


def global_critic(img_hw=(128, 128), dtype=None) -> Critic:
    return Critic((1, 2, 4, 4), img_hw, "discriminator_global", "dout_global_fc", dtype=dtype)
