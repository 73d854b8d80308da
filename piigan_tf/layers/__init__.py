"""Layers and tensor ops: contextual attention, align-corners resizes, box crops."""

from piigan_tf.layers.attention import contextual_attention, contextual_attention_loop
from piigan_tf.layers.ops import crop_boxes, paste_boxes, resize_nearest, upsample2x

__all__ = ["contextual_attention", "contextual_attention_loop", "crop_boxes", "paste_boxes",
           "resize_nearest", "upsample2x"]
