"""Contextual attention: vectorised layer vs per-sample loop vs a NumPy oracle of the spec."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf.layers.attention import contextual_attention, contextual_attention_loop  # noqa: E402


# ------------------------------------------------------------------ oracle
def _nearest_index(n_in, n_out):
    """Align-corners nearest: output o reads round(o*(in-1)/(out-1)), half away from zero."""
    if n_out == 1:
        return [0]
    return [int(math.floor(o * (n_in - 1) / (n_out - 1) + 0.5)) for o in range(n_out)]


def numpy_contextual_attention(f, b, mask, ksize=3, rate=2, fuse_k=3, softmax_scale=10.0,
                               fuse=True):
    """Slow, loop-based implementation of the spec's steps 1-8, from scratch, in float64.

    f, b: [B, H, W, C]; mask: [B, H, W, 1] (1 = hole). Returns (y, offsets).
    """
    f = np.asarray(f, np.float64)
    b = np.asarray(b, np.float64)
    mask = np.asarray(mask, np.float64)
    bsz, height, width, c = b.shape
    h, w = height // rate, width // rate
    k2 = 2 * rate
    half = ksize // 2
    ys = np.zeros((bsz, height, width, c))
    offsets = np.zeros((bsz, h, w, 2), np.int64)
    rows, cols = _nearest_index(height, h), _nearest_index(width, w)
    fpad = (fuse_k - 1) // 2
    for n in range(bsz):
        # 1. raw 2r x 2r patches at stride r, SAME: patch (i, j) covers rows
        #    r*i - pad .. r*i - pad + 2r - 1 with pad = (2r - r) // 2; zeros outside.
        pad = (k2 - rate) // 2
        raw = np.zeros((h, w, k2, k2, c))
        for i in range(h):
            for j in range(w):
                for u in range(k2):
                    for v in range(k2):
                        y0, x0 = rate * i - pad + u, rate * j - pad + v
                        if 0 <= y0 < height and 0 <= x0 < width:
                            raw[i, j, u, v] = b[n, y0, x0]
        # 2. downscale f, b, mask by `rate` (align-corners nearest).
        fs = f[n][rows][:, cols]
        bs = b[n][rows][:, cols]
        ms = mask[n][rows][:, cols]

        def window(img, i, j):
            out = np.zeros((ksize, ksize, img.shape[-1]))
            for u in range(ksize):
                for v in range(ksize):
                    y0, x0 = i - half + u, j - half + v
                    if 0 <= y0 < h and 0 <= x0 < w:
                        out[u, v] = img[y0, x0]
            return out

        # 3. normalised matching patches and their validity.
        patches, valid = {}, {}
        for i in range(h):
            for j in range(w):
                p = window(bs, i, j)
                patches[i, j] = p / max(np.sqrt(np.sum(p * p)), 1e-4)
                valid[i, j] = float(np.all(window(ms, i, j) == 0.0))
        # 4. scores[p, l]: foreground window at p against background patch l.
        positions = [(i, j) for i in range(h) for j in range(w)]
        scores = np.zeros((h * w, h * w))
        for pi, (i, j) in enumerate(positions):
            fw = window(fs, i, j)
            for li, l in enumerate(positions):
                scores[pi, li] = np.sum(fw * patches[l])
        # 5. fuse: identity-kernel smoothing along the diagonal, first in the
        #    (row-major) order of positions, then in column-major order.
        if fuse:
            def diag_smooth(s):
                out = np.zeros_like(s)
                for a in range(s.shape[0]):
                    for d in range(s.shape[1]):
                        for t in range(-fpad, fuse_k - fpad):
                            if 0 <= a + t < s.shape[0] and 0 <= d + t < s.shape[1]:
                                out[a, d] += s[a + t, d + t]
                return out

            scores = diag_smooth(scores)
            col_major = [i * w + j for j in range(w) for i in range(h)]  # index in row-major
            s2 = scores[np.ix_(col_major, col_major)]
            s2 = diag_smooth(s2)
            scores = np.zeros_like(scores)
            scores[np.ix_(col_major, col_major)] = s2
        # 6. x valid, softmax over background patches, x valid.
        vm = np.array([valid[l] for l in positions])
        attn = np.zeros_like(scores)
        for pi in range(h * w):
            s = scores[pi] * vm * softmax_scale
            e = np.exp(s - s.max())
            attn[pi] = e / e.sum() * vm
        # 8. offsets of the argmax patch.
        for pi, (i, j) in enumerate(positions):
            best = int(np.argmax(attn[pi]))
            offsets[n, i, j] = (best // w - i, best % w - j)
        # 7. transposed conv: fg position (i, j) pastes attn-weighted raw
        #    patches at rows r*i - pad + u; then / 4.
        out = np.zeros((height, width, c))
        for pi, (i, j) in enumerate(positions):
            for li, l in enumerate(positions):
                if attn[pi, li] == 0.0:
                    continue
                for u in range(k2):
                    for v in range(k2):
                        y0, x0 = rate * i - pad + u, rate * j - pad + v
                        if 0 <= y0 < height and 0 <= x0 < width:
                            out[y0, x0] += attn[pi, li] * raw[l][u, v]
        ys[n] = out / 4.0
    return ys, offsets


# ------------------------------------------------------------------ helpers
def _features(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _box(shape, top, left, h, w):
    m = np.zeros(shape, np.float32)
    m[top:top + h, left:left + w] = 1.0
    return m


def _masks_16():
    """Four different per-sample masks at 16x16: box, none, most of the map, all."""
    m = np.zeros((4, 16, 16, 1), np.float32)
    m[0] = _box((16, 16, 1), 4, 5, 6, 7)
    # m[1]: all zero
    m[2] = _box((16, 16, 1), 3, 3, 12, 12)  # most of the map, a thin known border
    m[3] = 1.0                              # no valid patch at all
    return m


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("fuse", [True, False])
def test_vectorised_matches_loop(fuse):
    x = tf.constant(_features((4, 16, 16, 8), 0))
    masks = tf.constant(_masks_16())
    y, off = contextual_attention(x, x, masks, fuse=fuse)
    y_ref, off_ref = contextual_attention_loop(x, x, masks, fuse=fuse)
    assert y.shape == (4, 16, 16, 8) and off.shape == (4, 8, 8, 2)
    assert off.dtype == tf.int32
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(off.numpy(), off_ref.numpy())
    # The fully masked sample has no valid patch: nothing is pasted.
    np.testing.assert_array_equal(y.numpy()[3], 0.0)
    # The others paste something.
    assert np.all(np.abs(y.numpy()[:3]).max(axis=(1, 2, 3)) > 0.1)


def test_vectorised_matches_loop_distinct_f_b_non_square():
    f = tf.constant(_features((3, 16, 24, 4), 1))
    b = tf.constant(_features((3, 16, 24, 4), 2))
    m = np.zeros((3, 16, 24, 1), np.float32)
    m[0, 2:9, 3:17] = 1.0
    m[2, 8:, :12] = 1.0
    y, off = contextual_attention(f, b, tf.constant(m))
    y_ref, off_ref = contextual_attention_loop(f, b, tf.constant(m))
    assert y.shape == (3, 16, 24, 4) and off.shape == (3, 8, 12, 2)
    # The vectorised layer sums the patch correlations in another order (a
    # diagonal sum of the pixel Gram matrix); the x10 softmax turns those
    # float32 rounding differences into ~1e-5 relative ones.
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=1e-5, rtol=5e-5)
    np.testing.assert_array_equal(off.numpy(), off_ref.numpy())


def test_mask_none_equals_zero_mask():
    x = tf.constant(_features((2, 8, 8, 4), 3))
    y0, off0 = contextual_attention(x, x, None)
    y1, off1 = contextual_attention(x, x, tf.zeros([2, 8, 8, 1]))
    np.testing.assert_array_equal(y0.numpy(), y1.numpy())
    np.testing.assert_array_equal(off0.numpy(), off1.numpy())


def test_batch_equals_single_sample():
    x = tf.constant(_features((4, 16, 16, 8), 4))
    masks = tf.constant(_masks_16())
    y, off = contextual_attention(x, x, masks)
    for i in range(4):
        yi, offi = contextual_attention(x[i:i + 1], x[i:i + 1], masks[i:i + 1])
        # oneDNN's conv kernels block by batch, so sums may round differently.
        np.testing.assert_allclose(yi.numpy()[0], y.numpy()[i], atol=1e-5, rtol=1e-5)
        np.testing.assert_array_equal(offi.numpy()[0], off.numpy()[i])


@pytest.mark.parametrize("case", ["square", "non_square"])
def test_matches_numpy_oracle_of_the_spec(case):
    if case == "square":
        shape, mshape = (2, 8, 8, 4), (8, 8, 1)
        masks = np.stack([_box(mshape, 2, 3, 3, 4), np.zeros(mshape, np.float32)])
    else:
        shape, mshape = (2, 8, 12, 4), (8, 12, 1)
        masks = np.stack([_box(mshape, 0, 5, 5, 4), _box(mshape, 4, 0, 4, 6)])
    x = _features(shape, 5)
    f = _features(shape, 6)
    y_np, off_np = numpy_contextual_attention(f, x, masks)
    y, off = contextual_attention(tf.constant(f), tf.constant(x), tf.constant(masks))
    np.testing.assert_allclose(y.numpy(), y_np, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(off.numpy(), off_np)
    # And with f = b, as PiiGAN calls it, and without fusion.
    y_np, off_np = numpy_contextual_attention(x, x, masks, fuse=False)
    y, off = contextual_attention(tf.constant(x), tf.constant(x), tf.constant(masks), fuse=False)
    np.testing.assert_allclose(y.numpy(), y_np, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(off.numpy(), off_np)


def test_hole_content_is_never_copied():
    """Background patches touching the hole get weight exactly 0.

    Channel 0 of b is a huge marker inside the hole and exactly 0 outside,
    so any weight on a patch touching the hole would show up in y[..., 0].
    """
    rng = np.random.default_rng(7)
    b = rng.normal(size=(2, 16, 16, 4)).astype(np.float32)
    masks = np.stack([_box((16, 16, 1), 5, 4, 6, 8), _box((16, 16, 1), 0, 6, 9, 10)])
    b[..., 0] = 1e4 * masks[..., 0]
    f = rng.normal(size=(2, 16, 16, 4)).astype(np.float32)
    for fg in (f, b):  # distinct foreground, and f = b as in PiiGAN
        y, _ = contextual_attention(tf.constant(fg), tf.constant(b), tf.constant(masks))
        y = y.numpy()
        np.testing.assert_array_equal(y[..., 0], 0.0)
        assert np.abs(y).max() <= np.abs(b[..., 1:]).max() + 1e-5
        assert np.abs(y[..., 1:]).max() > 0.1


def test_offsets_point_at_valid_patches():
    x = tf.constant(_features((1, 16, 16, 8), 8))
    mask = _box((16, 16, 1), 4, 4, 8, 8)[None]
    _, off = contextual_attention(x, x, tf.constant(mask))
    off = off.numpy()[0]
    rows = [0, 2, 4, 6, 9, 11, 13, 15]
    small = mask[0, rows][:, rows, 0]
    for i in range(8):
        for j in range(8):
            ti, tj = i + off[i, j, 0], j + off[i, j, 1]
            window = np.pad(small, 1)[ti:ti + 3, tj:tj + 3]
            assert window.sum() == 0, (i, j, ti, tj)


def test_uniform_attention_closed_form():
    """softmax_scale = 0, no mask, fuse off: every patch weighs 1/L.

    Constant features c, 16x16 -> L = 64 raw 4x4 patches at stride 2 (SAME,
    one row/column of zero padding on each side). Output pixel R is covered
    by kernel rows {1, 3} (R even) or {0, 2} (R odd) of its two pasting
    positions; kernel rows 0 and 3 read the padding for one of the 8 patch
    rows, rows 1 and 2 never: in the interior 8 + 7 = 15 in-range rows, on
    the border rows 0 and 15 only 8 (one pasting position). Hence
    y[R, C] = c / 4 * S(R) * S(C) / 64 with S = 15 inside, 8 on the border.
    """
    c = 0.7
    x = tf.fill([1, 16, 16, 3], c)
    y, _ = contextual_attention(x, x, None, softmax_scale=0.0, fuse=False)
    s = np.full(16, 15.0)
    s[0] = s[15] = 8.0
    expected = c / 4.0 * np.outer(s, s) / 64.0
    for ch in range(3):
        np.testing.assert_allclose(y.numpy()[0, ..., ch], expected, rtol=1e-6)
    assert math.isclose(expected[5, 9], c * 225 / 256)


def test_uniform_valid_constant_features():
    """Constant features, a 2-pixel masked ring, fuse off.

    The downscaled rows/cols read are [0,2,4,6,9,11,13,15], so rows/cols 0 and
    7 of the 8x8 map are hole; the valid patches are the 4x4 centred at 2..5,
    all identical (constant c) with identical scores, so attention is uniform
    over them (invalid patches' exp(0) is negligible against exp(10 s)).
    Each pasted raw patch is constant c, so y = c * (pasting positions
    covering the pixel) / 4: c inside, c/2 on edges, c/4 at corners.
    """
    c = 1.5
    x = tf.fill([1, 16, 16, 8], c)
    mask = np.ones((1, 16, 16, 1), np.float32)
    mask[0, 2:14, 2:14] = 0.0
    y, off = contextual_attention(x, x, tf.constant(mask), fuse=False)
    cover = np.full(16, 2.0)
    cover[0] = cover[15] = 1.0
    expected = c * np.outer(cover, cover) / 4.0
    np.testing.assert_allclose(y.numpy()[0, ..., 0], expected, rtol=1e-5)
    np.testing.assert_allclose(y.numpy()[0, ..., 7], expected, rtol=1e-5)
    # Every best match is one of the valid patches (2..5 on both axes).
    target = off.numpy()[0] + np.stack(np.meshgrid(range(8), range(8), indexing="ij"), -1)
    assert target.min() >= 2 and target.max() <= 5


def test_gradient_wrt_input():
    x = tf.Variable(_features((2, 16, 16, 4), 9))
    masks = np.stack([_box((16, 16, 1), 4, 4, 6, 6), np.zeros((16, 16, 1), np.float32)])
    masks = tf.constant(masks)
    w = tf.constant(_features((2, 16, 16, 4), 10))
    with tf.GradientTape(persistent=True) as tape:
        y, _ = contextual_attention(x, x, masks)
        loss = tf.reduce_sum(y * w)
        y_ref, _ = contextual_attention_loop(x, x, masks)
        loss_ref = tf.reduce_sum(y_ref * w)
    g = tape.gradient(loss, x).numpy()
    assert np.all(np.isfinite(g))
    assert np.abs(g).max() > 1e-3
    assert np.count_nonzero(g) > g.size // 2
    np.testing.assert_allclose(g, tape.gradient(loss_ref, x).numpy(), atol=1e-4, rtol=1e-4)


def test_gradient_finite_when_no_patch_is_valid():
    x = tf.Variable(_features((1, 8, 8, 4), 11))
    with tf.GradientTape() as tape:
        y, _ = contextual_attention(x, x, tf.ones([1, 8, 8, 1]))
        loss = tf.reduce_sum(y)
    g = tape.gradient(loss, x)
    assert g is None or np.all(np.isfinite(g.numpy()))


def test_works_inside_tf_function_with_unknown_batch():
    fn = tf.function(lambda f, m: contextual_attention(f, f, m),
                     input_signature=[tf.TensorSpec([None, 16, 16, 8]),
                                      tf.TensorSpec([None, 16, 16, 1])])
    x = tf.constant(_features((4, 16, 16, 8), 12))
    masks = tf.constant(_masks_16())
    y, off = fn(x, masks)
    y_eager, off_eager = contextual_attention(x, x, masks)
    np.testing.assert_allclose(y.numpy(), y_eager.numpy(), atol=1e-5)
    np.testing.assert_array_equal(off.numpy(), off_eager.numpy())


def test_stride_other_than_one_rejected():
    x = tf.zeros([1, 8, 8, 2])
    with pytest.raises(ValueError, match="stride"):
        contextual_attention(x, x, None, stride=2)
