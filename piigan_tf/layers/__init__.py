"""Layers and tensor ops: contextual attention, align-corners resizes, box crops.

The reference-structured ``contextual_attention_loop`` (a test oracle and a
benchmark baseline) stays in :mod:`piigan_tf.layers.attention`; import it
from there.
"""

from piigan_tf.layers.attention import contextual_attention
from piigan_tf.layers.ops import crop_boxes, paste_boxes, resize_nearest, upsample2x

__all__ = ["contextual_attention", "crop_boxes", "paste_boxes", "resize_nearest", "upsample2x"]
