"""Exact, cheaper formulations of the generator's dilated and upsampling convs.

Both compute the same function as the reference layers (the same kernel
variable, shape and name, so checkpoints map unchanged); only the order of
floating-point additions differs. ``tests/test_speed_paths.py`` checks them
against the plain ops.

* **Dilated 3x3 convs** (``conv7_atrous`` ... ``conv10_atrous``, dilation
  2-16 on the 32x32 map at 128x128). TensorFlow runs a dilated conv as
  SpaceToBatch -> conv -> BatchToSpace, whose backward pass on the small
  per-phase maps is slow on CPU. Splitting the map into its ``d x d`` phases
  by reshape/transpose and running an ordinary conv on them is the same sum
  and faster. When every phase is at most 2 pixels wide (d=16 on 32x32, and
  d >= 8 on the 16x16 map at 64x64) most taps only see the zero padding: the
  conv is then one matrix product over the 2x2 (or 1x1) block grid that
  skips them (4/9 of the FLOPs for a 2x2 grid, 1/9 -- the centre tap alone --
  for 1x1).
* **Upsampling convs** (``conv13_upsample`` ...): a 3x3 conv of a 2x
  nearest-upsampled map. Each of the four output phases (even/odd row and
  column) reads a 2x2 neighbourhood of the small map with a kernel made of
  summed taps, so the conv runs on the small map with 4/9 of the FLOPs and
  the 4x larger upsampled tensor is never materialised.

``set_fast_paths(False)`` switches every layer back to the plain formulation
(for benchmarks and equivalence tests); it takes effect at the next trace.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from piigan_tf.layers.ops import upsample2x

_FAST = True


def set_fast_paths(enabled: bool) -> None:
    """Turns the fast formulations on (default) or off, process-wide."""
    global _FAST
    _FAST = bool(enabled)


def fast_paths_enabled() -> bool:
    return _FAST


@contextlib.contextmanager
def fast_paths(enabled: bool):
    """Context manager form of ``set_fast_paths`` (restores the old setting)."""
    old = _FAST
    set_fast_paths(enabled)
    try:
        yield
    finally:
        set_fast_paths(old)


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
    rows = []
    for ih in range(mh):
        for iw in range(mw):
            cols = []
            for oh in range(mh):
                for ow in range(mw):
                    th, tw = ih - oh + centre, iw - ow + centre
                    cols.append(kernel[th, tw] if 0 <= th < k and 0 <= tw < k else zeros)
            rows.append(tf.concat(cols, axis=1))
    w_big = tf.concat(rows, axis=0)                          # [mh*mw*C, mh*mw*Cout]
    y = tf.matmul(x, w_big)
    y = tf.reshape(y, [b, d, d, mh, mw, cout])
    y = tf.transpose(y, [0, 3, 1, 4, 2, 5])                  # [B, mh, d, mw, d, Cout]
    y = tf.reshape(y, [b, mh * d, mw * d, cout])
    return y[:, :h, :w, :]


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
    return y[:, :h, :w, :]


def dilated_conv2d(x: tf.Tensor, kernel: tf.Tensor, dilation: int) -> tf.Tensor:
    """Stride-1 SAME conv with ``dilation``, = ``tf.nn.convolution(..., dilations=d)``.

    Args:
        x: [B, H, W, C]; H and W static for the fast forms (else the plain op runs).
        kernel: [k, k, C, Cout], k odd.
        dilation: the dilation rate d >= 1.

    Returns:
        [B, H, W, Cout].
    """
    d = int(dilation)
    h, w = x.shape[1], x.shape[2]
    k = kernel.shape[0]
    if not _FAST or d == 1 or h is None or w is None or k % 2 == 0 or kernel.shape[1] != k:
        return tf.nn.convolution(x, kernel, 1, "SAME", dilations=d)
    mh, mw = -(-h // d), -(-w // d)
    if mh <= 2 and mw <= 2:
        return _block_grid_conv(x, kernel, d, mh, mw)
    return _phase_conv(x, kernel, d)


# ---------------------------------------------------------------- upsample
def _phase_taps(k0, k1, k2):
    # Along one axis, output 2i reads source rows (i-1, i) with taps
    # (K0, K1+K2); output 2i+1 reads (i, i+1) with (K0+K1, K2).
    return ((k0, k1 + k2), (k0 + k1, k2))


def upsample_conv2d(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """``conv2d(upsample2x(x), kernel, SAME)`` for a 3x3 kernel, without upsampling.

    Args:
        x: [B, H, W, C] (the map *before* 2x nearest upsampling).
        kernel: [3, 3, C, Cout].

    Returns:
        [B, 2H, 2W, Cout].
    """
    if not _FAST or kernel.shape[0] != 3 or kernel.shape[1] != 3:
        return tf.nn.conv2d(upsample2x(x), kernel, 1, "SAME")
    by_row = _phase_taps(kernel[0], kernel[1], kernel[2])      # each [3, C, Cout]
    outs = []
    for a in range(2):
        r0, r1 = by_row[a]
        rows = tf.stack([r0, r1])                                 # [2, 3, C, Cout]
        by_col = _phase_taps(rows[:, 0], rows[:, 1], rows[:, 2])  # each [2, C, Cout]
        for bcol in range(2):
            k2x2 = tf.stack(by_col[bcol], axis=1)                 # [2, 2, C, Cout]
            # Phase 0 reads rows (i-1, i): one zero row on top; phase 1 reads
            # (i, i+1): one at the bottom. Explicit padding, not pad + slice,
            # keeps the backward pass free of full-size slice gradients.
            pad = [[0, 0], [1 - a, a], [1 - bcol, bcol], [0, 0]]
            outs.append(tf.nn.conv2d(x, k2x2, 1, pad))
    # depth_to_space puts channel block (a*2 + b) at output pixel (2i+a, 2j+b).
    return tf.nn.depth_to_space(tf.concat(outs, axis=3), 2)


# ------------------------------------------------------------------ layers
class DilatedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 1, SAME) whose dilated conv uses ``dilated_conv2d``."""

    def convolution_op(self, inputs, kernel):
        d = self.dilation_rate[0]
        if self.dilation_rate[1] != d or self.strides != (1, 1) or self.padding != "same":
            return super().convolution_op(inputs, kernel)
        return dilated_conv2d(inputs, kernel, d)


class UpsampleConv2D(keras.layers.Conv2D):
    """3x3 SAME conv applied to the 2x nearest upsampling of its input.

    Called with the *small* map [B, H, W, C]; returns [B, 2H, 2W, filters].
    Its kernel is that of a conv on the upsampled map, so weights are
    interchangeable with ``Conv2D(upsample2x(x))``.
    """

    def build(self, input_shape):
        h = None if input_shape[1] is None else 2 * input_shape[1]
        w = None if input_shape[2] is None else 2 * input_shape[2]
        super().build((input_shape[0], h, w, input_shape[3]))

    def convolution_op(self, inputs, kernel):
        return upsample_conv2d(inputs, kernel)

    def compute_output_shape(self, input_shape):
        h = None if input_shape[1] is None else 2 * input_shape[1]
        w = None if input_shape[2] is None else 2 * input_shape[2]
        return (input_shape[0], h, w, self.filters)
