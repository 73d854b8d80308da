"""Exact, cheaper formulations of the generator's dilated and upsampling convs.

Both compute the same function as the reference layers (the same kernel
variable, shape and name, so checkpoints map unchanged); only the order of
floating-point additions differs. ``tests/test_speed_paths.py`` checks them
against the plain ops.

* **Dilated 3x3 convs** (``conv7_atrous`` ... ``conv10_atrous``, dilation
  2-16 on the 32x32 map at 128x128). ``tf.nn.convolution`` (what Keras
  calls) runs a dilated conv as SpaceToBatch -> conv -> BatchToSpace, whose
  backward pass on the small per-phase maps is slow on CPU. With oneDNN (or
  on GPU) the Conv2D op takes the dilation itself, which is faster; with
  TF's own CPU kernels, which cannot back-propagate a dilated Conv2D, the map
  is split into its ``d x d`` phases by reshape/transpose and an ordinary
  conv runs on them (the same sum). When every phase is at most 2 pixels
  wide (d=16 on 32x32, and d >= 8 on the 16x16 map at 64x64) most taps only
  see the zero padding: the conv is then one matrix product over the 2x2
  (or 1x1) block grid that skips them (4/9 of the FLOPs for a 2x2 grid,
  1/9 -- the centre tap alone -- for 1x1).
* **Upsampling convs** (``conv13_upsample`` ...): a 3x3 conv of a 2x
  nearest-upsampled map. Each of the four output phases (even/odd row and
  column) reads a 2x2 neighbourhood of the small map with a kernel made of
  summed taps: together a stride-2 transposed conv of the small map with a
  4x4 kernel, 4/9 of the FLOPs, and the 4x larger upsampled tensor is never
  materialised.

Each layer takes ``fast=False`` to run the plain formulation instead (the
benchmarks' reference mode and the equivalence tests), and ``DilatedConv2D``
takes ``native_dilation`` to force or forbid the Conv2D op's own dilation
(default: decided by a probe of the running TensorFlow). The networks pass
these down from their own arguments (``Generator(fast_paths=...)``).
"""

from __future__ import annotations

import re

import keras
import tensorflow as tf

from piigan_tf.layers.ops import upsample2x

# ----------------------------------------------------------------- dilated
def _block_grid_conv(x, kernel, d, mh, mw):
    """Dilated SAME conv as one matmul over an ``mh x mw`` (each <= 2) block grid.

    With the map padded to ``(mh*d, mw*d)``, pixel (p*d + u, q*d + v) only
    interacts with pixels of the same phase (u, v), in blocks p' = p + t for
    taps t in {-1, 0, 1}. Stacking the blocks of each phase along channels,
    the conv is ``[N, mh*mw*C] @ W`` with W assembled from the kernel taps;
    taps that would leave the grid (only zero padding) are simply absent.
    """
    shape = tf.shape(x)
    b = shape[0]
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    k = kernel.shape[0]
    cout = kernel.shape[3]
    centre = (k - 1) // 2
    x = tf.pad(x, [[0, 0], [0, mh * d - h], [0, mw * d - w], [0, 0]])
    x = tf.reshape(x, [b, mh, d, mw, d, c])
    x = tf.transpose(x, [0, 2, 4, 1, 3, 5])                  # [B, d, d, mh, mw, C]
    x = tf.reshape(x, [-1, mh * mw * c])
    zeros = tf.zeros([c, cout], kernel.dtype)
    # One Unpack for all taps: its gradient is one Pack, where a strided
    # slice per tap costs a StridedSliceGrad over the whole kernel each.
    taps = tf.unstack(tf.reshape(kernel, [k * k, c, cout]))
    rows = []
    for ih in range(mh):
        for iw in range(mw):
            cols = []
            for oh in range(mh):
                for ow in range(mw):
                    th, tw = ih - oh + centre, iw - ow + centre
                    cols.append(taps[th * k + tw] if 0 <= th < k and 0 <= tw < k else zeros)
            rows.append(tf.concat(cols, axis=1))
    w_big = tf.concat(rows, axis=0)                          # [mh*mw*C, mh*mw*Cout]
    y = tf.matmul(x, w_big)
    y = tf.reshape(y, [b, d, d, mh, mw, cout])
    y = tf.transpose(y, [0, 3, 1, 4, 2, 5])                  # [B, mh, d, mw, d, Cout]
    y = tf.reshape(y, [b, mh * d, mw * d, cout])
    return _crop_to(y, h, w)


def _crop_to(y, h, w):
    """``y[:, :h, :w]`` as a Slice (gradient: a Pad), or y itself if it fits."""
    if y.shape[1] == h and y.shape[2] == w:
        return y
    return tf.slice(y, [0, 0, 0, 0], [-1, h, w, -1])


def _phase_conv(x, kernel, d):
    """Dilated SAME conv as an ordinary SAME conv on the map's d x d phases."""
    shape = tf.shape(x)
    b = shape[0]
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    cout = kernel.shape[3]
    mh, mw = -(-h // d), -(-w // d)
    if mh * d != h or mw * d != w:  # zero rows/columns at the end change nothing
        x = tf.pad(x, [[0, 0], [0, mh * d - h], [0, mw * d - w], [0, 0]])
    x = tf.reshape(x, [b, mh, d, mw, d, c])
    x = tf.transpose(x, [0, 2, 4, 1, 3, 5])
    x = tf.reshape(x, [-1, mh, mw, c])                       # [B*d*d, mh, mw, C]
    y = tf.nn.conv2d(x, kernel, 1, "SAME")
    y = tf.reshape(y, [b, d, d, mh, mw, cout])
    y = tf.transpose(y, [0, 3, 1, 4, 2, 5])
    y = tf.reshape(y, [b, mh * d, mw * d, cout])
    return _crop_to(y, h, w)


def dilated_conv2d(x: tf.Tensor, kernel: tf.Tensor, dilation: int, fast: bool = True,
                   native: bool | None = None) -> tf.Tensor:
    """Stride-1 SAME conv with ``dilation``, = ``tf.nn.convolution(..., dilations=d)``.

    Args:
        x: [B, H, W, C]; H and W static for the block-grid and phase forms.
        kernel: [k, k, C, Cout], k odd.
        dilation: the dilation rate d >= 1.
        fast: False runs ``tf.nn.convolution`` as it is (the plain formulation).
        native: whether the Conv2D op's own dilation is used where no block
            grid applies; None decides by :func:`native_dilation_supported`.

    Returns:
        [B, H, W, Cout].
    """
    d = int(dilation)
    h, w = x.shape[1], x.shape[2]
    k = kernel.shape[0]
    if not fast or d == 1 or k % 2 == 0 or kernel.shape[1] != k:
        return tf.nn.convolution(x, kernel, 1, "SAME", dilations=d)
    if h is not None and w is not None:
        mh, mw = -(-h // d), -(-w // d)
        if mh <= 2 and mw <= 2:
            return _block_grid_conv(x, kernel, d, mh, mw)
    if native_dilation_supported(x.dtype) if native is None else native:
        # Also for sizes known only at run time (the exported sampler).
        return tf.nn.conv2d(x, kernel, 1, "SAME", dilations=d)
    if h is None or w is None:
        return tf.nn.convolution(x, kernel, 1, "SAME", dilations=d)
    return _phase_conv(x, kernel, d)


def native_dilation_supported(dtype=tf.float32) -> bool:
    """Whether the Conv2D op runs (and back-propagates) dilated convs itself.

    oneDNN on CPU and cuDNN on GPU do, faster than any rearrangement. TF's
    own CPU kernels may have no dilated backward pass ("Current CPU
    implementations do not yet support dilation rates larger than 1"), and
    oneDNN takes bfloat16 only on CPUs with AVX-512 (elsewhere TF's kernels
    run it even with oneDNN on), float16 only on some. So on CPU this is
    decided by a probe (``conv_gradient_error``), not by the CPU's name:
    where it fails, the phase form below runs instead (the same sum).
    """
    if tf.config.list_physical_devices("GPU"):
        return True
    return conv_gradient_error(dtype, dilation=2) is None


_PROBES: dict[tuple[str, int], str | None] = {}


def conv_gradient_error(dtype=tf.float32, dilation: int = 1) -> str | None:
    """Probes whether a 3x3 SAME conv with ``dilation`` back-propagates in ``dtype``.

    Runs a tiny conv and both its gradients (input and kernel), eagerly and
    in a ``tf.function`` (the two go through different kernel-selection
    passes), on the default device. The answer is cached per process.

    Returns:
        None if it works, else the error's first line (e.g. TensorFlow's
        "Current CPU implementations do not yet support dilation rates
        larger than 1").
    """
    dtype = tf.as_dtype(dtype)
    key = (dtype.name, int(dilation))
    if key not in _PROBES:
        with tf.init_scope():  # runs now, even when called while tracing a graph
            _PROBES[key] = _probe(dtype, int(dilation))
    return _PROBES[key]


def _probe(dtype: tf.DType, dilation: int) -> str | None:
    # The gradient ops are called directly: a GradientTape records nothing
    # inside init_scope, where this runs when called during a trace.
    def grads(x, k, dy):
        d = [1, dilation, dilation, 1]
        return (tf.nn.conv2d(x, k, 1, "SAME", dilations=dilation),
                tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=k,
                                               out_backprop=dy, strides=[1, 1, 1, 1],
                                               padding="SAME", dilations=d),
                tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(k),
                                                out_backprop=dy, strides=[1, 1, 1, 1],
                                                padding="SAME", dilations=d))

    # The map is wider than 2 * dilation so that every tap reads real pixels.
    side = 4 * dilation + 2
    x = tf.cast(tf.reshape(tf.range(side * side * 8, dtype=tf.float32) % 7 - 3.0,
                           [1, side, side, 8]), dtype)
    k = tf.cast(tf.reshape(tf.range(3 * 3 * 8 * 8, dtype=tf.float32) % 5 - 2.0,
                           [3, 3, 8, 8]), dtype)
    dy = tf.cast(tf.ones([1, side, side, 8]), dtype)
    try:
        for fn in (grads, tf.function(grads)):
            for value in fn(x, k, dy):
                value.numpy()
    except (tf.errors.OpError, TypeError, ValueError) as e:
        text = getattr(e, "message", None) or str(e)
        text = re.sub(r"\{\{function_node [^}]*\}\}|\[\[.*?\]\]|\[Op:\w+\]( name:\S*)?", "", text)
        text = " ".join(text.split())
        return text[:300] or type(e).__name__
    return None


# ---------------------------------------------------------------- upsample
# Along one axis, source pixel i reaches outputs 2i-1 .. 2i+2 of
# conv3x3(upsample2x(x)) through the taps K2, K1+K2, K0+K1, K0.
_UPSAMPLE_TAPS = ((0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0))


def upsample_conv2d(x: tf.Tensor, kernel: tf.Tensor, fast: bool = True) -> tf.Tensor:
    """``conv2d(upsample2x(x), kernel, SAME)`` for a 3x3 kernel, without upsampling.

    A 3x3 conv of a 2x nearest-upsampled map is a stride-2 transposed conv
    of the small map with a 4x4 kernel of summed taps: 16 instead of 36
    multiply-adds per input pixel and channel pair, and one TensorFlow op
    (oneDNN's deconvolution on CPU) whose gradients are ordinary convs.

    Args:
        x: [B, H, W, C] (the map *before* 2x nearest upsampling).
        kernel: [3, 3, C, Cout].
        fast: False upsamples, then convolves (the plain formulation).

    Returns:
        [B, 2H, 2W, Cout].
    """
    if not fast or kernel.shape[0] != 3 or kernel.shape[1] != 3:
        return tf.nn.conv2d(upsample2x(x), kernel, 1, "SAME")
    taps = tf.constant(_UPSAMPLE_TAPS, kernel.dtype)
    # conv2d_transpose takes [kh, kw, out_channels, in_channels].
    k4 = tf.einsum("tu,sv,uvio->tsoi", taps, taps, kernel)
    shape = tf.shape(x)
    out_shape = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], kernel.shape[3]])
    return tf.nn.conv2d_transpose(x, k4, out_shape, 2, "SAME")


# ------------------------------------------------------------------ layers
class DilatedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 1, SAME) whose dilated conv uses ``dilated_conv2d``.

    Args:
        fast: False computes the plain ``tf.nn.convolution``.
        native_dilation: True/False forces or forbids the Conv2D op's own
            dilation; None (default) probes the running TensorFlow.
        **kwargs: ``keras.layers.Conv2D``'s.
    """

    def __init__(self, *args, fast: bool = True, native_dilation: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fast = bool(fast)
        self.native_dilation = native_dilation

    def convolution_op(self, inputs, kernel):
        d = self.dilation_rate[0]
        if self.dilation_rate[1] != d or self.strides != (1, 1) or self.padding != "same":
            return super().convolution_op(inputs, kernel)
        return dilated_conv2d(inputs, kernel, d, self.fast, self.native_dilation)

    def get_config(self):
        return {**super().get_config(), "fast": self.fast,
                "native_dilation": self.native_dilation}


class UpsampleConv2D(keras.layers.Conv2D):
    """3x3 SAME conv applied to the 2x nearest upsampling of its input.

    Called with the *small* map [B, H, W, C]; returns [B, 2H, 2W, filters].
    Its kernel is that of a conv on the upsampled map, so weights are
    interchangeable with ``Conv2D(upsample2x(x))``. ``fast=False`` upsamples,
    then convolves (the plain formulation).
    """

    def __init__(self, *args, fast: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fast = bool(fast)

    def build(self, input_shape):
        h = None if input_shape[1] is None else 2 * input_shape[1]
        w = None if input_shape[2] is None else 2 * input_shape[2]
        super().build((input_shape[0], h, w, input_shape[3]))

    def convolution_op(self, inputs, kernel):
        return upsample_conv2d(inputs, kernel, self.fast)

    def get_config(self):
        return {**super().get_config(), "fast": self.fast}

    def compute_output_shape(self, input_shape):
        h = None if input_shape[1] is None else 2 * input_shape[1]
        w = None if input_shape[2] is None else 2 * input_shape[2]
        return (input_shape[0], h, w, self.filters)
