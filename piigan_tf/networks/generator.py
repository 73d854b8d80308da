"""PiiGAN generator: two stages, noise z added in every zconv, contextual attention.

Layer names are the reference's (``inpaint_net/conv1``, ``xconv*``, ``pmconv*``,
``allconv*``), so variables map one to one onto a TF1 checkpoint of the
reference (see ``piigan_tf.convert``).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from piigan_tf.layers.attention import contextual_attention
from piigan_tf.layers.fast_conv import DilatedConv2D, UpsampleConv2D
from piigan_tf.layers.ops import resize_nearest

# (name, filters as a multiple of cnum, kernel, stride, dilation, z level)
# z level: 0 = full resolution, 1 = /2, 2 = /4.
_STAGE1 = [
    ("conv1", 1, 5, 1, 1, 0),
    ("conv2_downsample", 2, 3, 2, 1, 1),
    ("conv3", 2, 3, 1, 1, 1),
    ("conv4_downsample", 4, 3, 2, 1, 2),
    ("conv5", 4, 3, 1, 1, 2),
    ("conv6", 4, 3, 1, 1, 2),
    ("conv7_atrous", 4, 3, 1, 2, 2),
    ("conv8_atrous", 4, 3, 1, 4, 2),
    ("conv9_atrous", 4, 3, 1, 8, 2),
    ("conv10_atrous", 4, 3, 1, 16, 2),
    ("conv11", 4, 3, 1, 1, 2),
    ("conv12", 4, 3, 1, 1, 2),
]
_HALLU = [
    ("xconv1", 1, 5, 1, 1, 0),
    ("xconv2_downsample", 1, 3, 2, 1, 1),
    ("xconv3", 2, 3, 1, 1, 1),
    ("xconv4_downsample", 2, 3, 2, 1, 2),
    ("xconv5", 4, 3, 1, 1, 2),
    ("xconv6", 4, 3, 1, 1, 2),
    ("xconv7_atrous", 4, 3, 1, 2, 2),
    ("xconv8_atrous", 4, 3, 1, 4, 2),
    ("xconv9_atrous", 4, 3, 1, 8, 2),
    ("xconv10_atrous", 4, 3, 1, 16, 2),
]
_ATTN_IN = [
    ("pmconv1", 1, 5, 1, 1, 0),
    ("pmconv2_downsample", 1, 3, 2, 1, 1),
    ("pmconv3", 2, 3, 1, 1, 1),
    ("pmconv4_downsample", 4, 3, 2, 1, 2),
    ("pmconv5", 4, 3, 1, 1, 2),
    # The reference passes activation=relu here, but its helper ignores the
    # argument: ELU is applied, as in every zconv.
    ("pmconv6", 4, 3, 1, 1, 2),
]
_ATTN_OUT = [("pmconv9", 4, 3, 1, 1, 2), ("pmconv10", 4, 3, 1, 1, 2)]
_MERGE = [("allconv11", 4, 3, 1, 1, 2), ("allconv12", 4, 3, 1, 1, 2)]


def _make_conv(name, filters, kernel, stride=1, dilation=1, fast=True, native_dilation=None,
               dtype=None):
    # Dilated convs use an exact, faster formulation (piigan_tf.layers.fast_conv);
    # the variables are those of a plain Conv2D.
    if dilation > 1:
        return DilatedConv2D(filters, kernel, dilation_rate=dilation, padding="same", name=name,
                             fast=fast, native_dilation=native_dilation, dtype=dtype)
    return keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", name=name,
                               dtype=dtype)


def _track_by_name(owner: keras.layers.Layer, layers) -> None:
    """Makes each layer an attribute named after it.

    Keras 3 leaves layers held only in Python lists out of
    ``tf.train.Checkpoint``'s object graph (their weights would silently not
    be saved); attributes are always tracked. The checkpoint keys then read
    like the reference's names, e.g. ``generator/conv1/kernel``.
    """
    for layer in layers:
        setattr(owner, layer.name, layer)


class Upsample(keras.layers.Layer):
    """The reference's ``gen_deconv``: 2x nearest upsampling, then 3x3 conv + ELU.

    The inner conv is named ``<name>_conv`` as in the reference
    (``conv13_upsample/conv13_upsample_conv/kernel``). It is computed on the
    small map without materialising the upsampled one (same values, 4/9 of
    the FLOPs; see ``piigan_tf.layers.fast_conv.upsample_conv2d``).
    """

    def __init__(self, filters: int, fast: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.fast = bool(fast)
        self.conv = UpsampleConv2D(filters, 3, padding="same", name=f"{self.name}_conv",
                                   fast=fast, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, x):
        return tf.nn.elu(self.conv(x))

    def compute_output_shape(self, input_shape):
        h = None if input_shape[1] is None else 2 * input_shape[1]
        w = None if input_shape[2] is None else 2 * input_shape[2]
        return (input_shape[0], h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "fast": self.fast}


class Generator(keras.Model):
    """The two-stage inpainting network ``inpaint_net``.

    Call with ``(incomplete, masks, z)``:
        incomplete: float [B, H, W, 3] in [-1, 1], holes zeroed
            (``images * (1 - masks)``); H and W multiples of 8.
        masks: float [B, H, W, 1], 1 = hole (one mask per sample).
        z: float [B, H, W, 1] noise; only its values inside the hole are used.

    Returns ``(coarse, refined)`` = (x1, x2), each [B, H, W, 3] in [-1, 1].
    ``generator(inputs, return_offsets=True)`` returns ``(coarse, refined,
    offsets)``: the contextual attention's offsets, int32 [B, H/8, W/8, 2],
    the (dy, dx) of the background patch each position copied the most from,
    counted in cells of the attention grid (8 pixels). They are for
    visualisation (``piigan_tf.utils.flow_to_image``,
    ``Inpainter.attention_offsets``) and are not part of the exported outputs.
    """

    def __init__(self, cnum: int = 32, fast_paths: bool = True,
                 native_dilation: bool | None = None, name: str = "inpaint_net", **kwargs):
        super().__init__(name=name, **kwargs)
        self.cnum = cnum
        self.fast_paths = bool(fast_paths)
        self.native_dilation = native_dilation
        # Every sublayer takes this model's dtype policy (Keras layers do not
        # inherit it), and the fast-path choices.
        policy = self.dtype_policy

        def _conv(name, filters, kernel, stride=1, dilation=1):
            return _make_conv(name, filters, kernel, stride, dilation, fast_paths,
                              native_dilation, policy)

        def up(filters, name):
            return Upsample(filters, fast=fast_paths, name=name, dtype=policy)

        # z resolution level of every zconv, by layer name.
        self.z_levels = {n: lvl for spec in (_STAGE1, _HALLU, _ATTN_IN, _ATTN_OUT, _MERGE)
                         for n, _, _, _, _, lvl in spec}

        def zconvs(spec):
            return [_conv(n, m * cnum, k, s, d) for n, m, k, s, d, _ in spec]

        self.stage1 = zconvs(_STAGE1)
        self.stage1_up = [
            up(2 * cnum, name="conv13_upsample"),
            _conv("conv14", 2 * cnum, 3),
            up(cnum, name="conv15_upsample"),
            _conv("conv16", cnum // 2, 3),
        ]
        self.stage1_out = _conv("conv17", 3, 3)
        self.hallu = zconvs(_HALLU)
        self.attn_in = zconvs(_ATTN_IN)
        self.attn_out = zconvs(_ATTN_OUT)
        self.merge = zconvs(_MERGE)
        self.stage2_up = [
            up(2 * cnum, name="allconv13_upsample"),
            _conv("allconv14", 2 * cnum, 3),
            up(cnum, name="allconv15_upsample"),
            _conv("allconv16", cnum // 2, 3),
        ]
        self.stage2_out = _conv("allconv17", 3, 3)
        _track_by_name(self, self.stage1 + self.stage1_up + self.hallu + self.attn_in
                       + self.attn_out + self.merge + self.stage2_up)

    def build(self, input_shape):
        # Build by tracing once on a symbolic-free dummy, so weights exist
        # (and load from checkpoints) before the first real call.
        shape = input_shape[0]
        h = shape[1] or 64
        w = shape[2] or 64
        x = tf.zeros([1, h, w, 3])
        m = tf.zeros([1, h, w, 1])
        self.call((x, m, tf.zeros([1, h, w, 1])))

    def _run_zconvs(self, layers, x, zs):
        # zconv: conv (no activation) -> + z at the layer's resolution
        # (one noise channel broadcast over all channels) -> ELU.
        for conv in layers:
            x = tf.nn.elu(conv(x) + self._noise_for(zs, self.z_levels[conv.name], conv.filters))
        return x

    def _noise_for(self, zs, level, channels):
        """z at ``level``, to be added to a conv output of ``channels`` channels.

        Under bfloat16 the noise is materialised at full width (once per
        resolution and width): an add of two equal shapes lets Grappler fuse
        conv + bias + add + ELU into one oneDNN kernel, and Eigen's bfloat16
        ELU, which the fusion removes, is several times slower than float32's.
        In float32 the fusion gains nothing and the broadcast add is kept.
        """
        z = zs[level]
        if self.compute_dtype != "bfloat16":
            return z
        key = (level, channels)
        if key not in zs:
            shape = tf.shape(z)
            zs[key] = tf.broadcast_to(z, tf.stack([shape[0], shape[1], shape[2], channels]))
        return zs[key]

    @staticmethod
    def _run_up(layers, out_conv, x):
        for layer in layers:
            x = layer(x)
            if not isinstance(layer, Upsample):
                x = tf.nn.elu(x)
        return tf.clip_by_value(out_conv(x), -1.0, 1.0)

    def call(self, inputs, return_offsets: bool = False):
        incomplete, masks, z = inputs
        dtype = self.compute_dtype
        incomplete = tf.cast(incomplete, dtype)
        masks = tf.cast(masks, dtype)
        z = tf.cast(z, dtype) * masks
        shape = tf.shape(incomplete)
        h, w = shape[1], shape[2]
        zs = {0: z, 1: resize_nearest(z, [h // 2, w // 2]), 2: resize_nearest(z, [h // 4, w // 4])}
        ones = tf.ones_like(incomplete[..., 0:1])

        # Stage 1: coarse.
        x = tf.concat([incomplete, z, ones, ones * masks], axis=3)
        x = self._run_zconvs(self.stage1[:6], x, zs)
        masks_small = resize_nearest(masks, [tf.shape(x)[1], tf.shape(x)[2]])
        x = self._run_zconvs(self.stage1[6:], x, zs)
        coarse = self._run_up(self.stage1_up, self.stage1_out, x)

        # Stage 2: refine the coarse result pasted into the known pixels.
        x = coarse * masks + incomplete * (1.0 - masks)
        x_now = tf.concat([x, z, ones, ones * masks], axis=3)
        x_hallu = self._run_zconvs(self.hallu, x_now, zs)
        x = self._run_zconvs(self.attn_in, x_now, zs)
        # Matching and the softmax run in float32 even under mixed precision:
        # the x10 softmax saturates in bfloat16.
        x = tf.cast(x, "float32")  # one tensor as f and b: the layer shares their work
        x, offsets = contextual_attention(x, x, tf.cast(masks_small, "float32"), 3, 1, rate=2)
        x = self._run_zconvs(self.attn_out, tf.cast(x, dtype), zs)
        x = tf.concat([x_hallu, x], axis=3)
        x = self._run_zconvs(self.merge, x, zs)
        refined = self._run_up(self.stage2_up, self.stage2_out, x)
        if return_offsets:
            return coarse, refined, offsets
        return coarse, refined

    def get_config(self):
        return {"cnum": self.cnum, "fast_paths": self.fast_paths,
                "native_dilation": self.native_dilation, "name": self.name}
