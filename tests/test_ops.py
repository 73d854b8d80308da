"""Tests of piigan_tf.layers.ops: align-corners nearest resize, 2x upsampling, box crop/paste."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math  # noqa: E402
from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf.layers.ops import crop_boxes, paste_boxes, resize_nearest, upsample2x  # noqa: E402


# One trace for every size (sizes as tensors), so the many-sizes sweep is fast.
_resize_rows = tf.function(
    lambda x, size: resize_nearest(x, [size, 1]),
    input_signature=[tf.TensorSpec([1, None, 1, 1], tf.float32), tf.TensorSpec([], tf.int32)])


def _rows_read(n_in, n_out):
    """Source row read by each output row of ``resize_nearest`` along H."""
    x = tf.reshape(tf.range(n_in, dtype=tf.float32), [1, n_in, 1, 1])
    return _resize_rows(x, tf.constant(n_out)).numpy().ravel().astype(int).tolist()


def _cols_read(n_in, n_out):
    x = tf.reshape(tf.range(n_in, dtype=tf.float32), [1, 1, n_in, 1])
    return resize_nearest(x, [1, n_out]).numpy().ravel().astype(int).tolist()


# Hand-computed from round(o * (in - 1) / (out - 1)), written out literally.
EXPECTED_INDICES = {
    (128, 64): list(range(0, 63, 2)) + list(range(65, 128, 2)),
    (64, 32): [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
               33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63],
    (32, 16): [0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31],
    (16, 8): [0, 2, 4, 6, 9, 11, 13, 15],
    (8, 4): [0, 2, 5, 7],
    (128, 32): [0, 4, 8, 12, 16, 20, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61,
                66, 70, 74, 78, 82, 86, 90, 94, 98, 102, 107, 111, 115, 119, 123, 127],
    (32, 8): [0, 4, 9, 13, 18, 22, 27, 31],
    (4, 8): [0, 0, 1, 1, 2, 2, 3, 3],  # 2x upsampling = repetition
}


@pytest.mark.parametrize("sizes", sorted(EXPECTED_INDICES))
def test_resize_nearest_index_lists(sizes):
    n_in, n_out = sizes
    assert _rows_read(n_in, n_out) == EXPECTED_INDICES[sizes]
    assert _cols_read(n_in, n_out) == EXPECTED_INDICES[sizes]


def test_resize_nearest_128_to_64_is_not_stride_2():
    idx = _rows_read(128, 64)
    assert idx[31] == 62 and idx[32] == 65
    assert idx != list(range(0, 128, 2))


def test_resize_nearest_non_square_and_values():
    # 16x8 -> 8x4 reads rows [0,2,4,6,9,11,13,15] and cols [0,2,5,7] independently.
    x = np.arange(16 * 8 * 2, dtype=np.float32).reshape(1, 16, 8, 2)
    x = np.concatenate([x, -x], axis=0)  # batch of 2
    got = resize_nearest(tf.constant(x), [8, 4]).numpy()
    rows = [0, 2, 4, 6, 9, 11, 13, 15]
    cols = [0, 2, 5, 7]
    assert got.shape == (2, 8, 4, 2)
    np.testing.assert_array_equal(got, x[:, rows][:, :, cols])
    # Scalar tensor sizes (as the generator passes h // 2) work too.
    got_t = resize_nearest(tf.constant(x), [tf.constant(8), tf.constant(4)]).numpy()
    np.testing.assert_array_equal(got_t, got)


def test_resize_nearest_keeps_dtype():
    x = tf.ones([1, 8, 8, 1], tf.bfloat16)
    assert resize_nearest(x, [4, 4]).dtype == tf.bfloat16


def _exact_round_half_away(q: Fraction) -> int:
    return math.floor(q + Fraction(1, 2))  # q >= 0


def test_resize_nearest_formula_for_many_sizes():
    """round(o*(in-1)/(out-1)), half away from zero, for every in, out in 2..48.

    The formula holds exactly except at exact .5 ties, where TF's kernel (the
    one the reference ran) rounds the float32 product ``float(o) * scale`` and
    may land either side (e.g. 32 -> 15, o = 7: 15.5 exactly, TF reads 15).
    Ties never occur for the sizes PiiGAN uses (H multiple of 8 halved or
    quartered: out - 1 is odd), checked separately below.
    """
    checked_ties = 0
    for n_in in range(2, 49):
        for n_out in range(2, 49):
            got = _rows_read(n_in, n_out)
            scale = np.float32(n_in - 1) / np.float32(n_out - 1)
            for o in range(n_out):
                q = Fraction(o * (n_in - 1), n_out - 1)
                if q - math.floor(q) == Fraction(1, 2):
                    checked_ties += 1
                    emulated = math.floor(float(np.float32(o) * scale) + 0.5)
                    assert got[o] == min(emulated, n_in - 1), (n_in, n_out, o)
                else:
                    assert got[o] == _exact_round_half_away(q), (n_in, n_out, o)
    assert checked_ties > 0


@pytest.mark.parametrize("height", [8, 16, 24, 32, 40, 64, 96, 128, 256])
def test_resize_nearest_port_sizes_have_no_ties(height):
    for n_out in (height // 2, height // 4):
        got = _rows_read(height, n_out)
        exact = [_exact_round_half_away(Fraction(o * (height - 1), n_out - 1)) if n_out > 1 else 0
                 for o in range(n_out)]
        assert got == exact
        assert (n_out - 1) % 2 == 1 or n_out == 1  # odd denominator: never a .5 tie


def test_upsample2x_is_repetition():
    x = tf.constant(np.arange(2 * 2 * 3 * 1, dtype=np.float32).reshape(2, 2, 3, 1))
    got = upsample2x(x).numpy()
    assert got.shape == (2, 4, 6, 1)
    expected0 = np.array([[0, 0, 1, 1, 2, 2],
                          [0, 0, 1, 1, 2, 2],
                          [3, 3, 4, 4, 5, 5],
                          [3, 3, 4, 4, 5, 5]], np.float32)
    np.testing.assert_array_equal(got[0, ..., 0], expected0)
    np.testing.assert_array_equal(got[1, ..., 0], expected0 + 6)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 16, 31, 32, 64])
def test_upsample2x_equals_align_corners_resize(n):
    # The reference upsamples with the align-corners resize; for exact 2x it
    # is repetition, so the port's tf.repeat is the same op.
    x = tf.random.stateless_normal([2, n, n + 2, 3], seed=[n, 1])
    np.testing.assert_array_equal(upsample2x(x).numpy(),
                                  resize_nearest(x, [2 * n, 2 * (n + 2)]).numpy())


# ---------------------------------------------------------------- boxes
BOXES = np.array([[2, 3, 4, 5], [0, 4, 4, 5], [4, 0, 4, 5]], np.int32)  # (top, left, h, w)


def _x(shape=(3, 8, 9, 2)):
    return tf.constant(np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 1.0)


def _box_mask(boxes, hw, h, w):
    m = np.zeros((len(boxes), *hw, 1), np.float32)
    for i, (t, l, *_) in enumerate(boxes):
        m[i, t:t + h, l:l + w] = 1.0
    return m


def test_crop_boxes_per_sample():
    x = _x()
    got = crop_boxes(x, tf.constant(BOXES), 4, 5).numpy()
    assert got.shape == (3, 4, 5, 2)
    xn = x.numpy()
    for i, (t, l, _, _) in enumerate(BOXES):
        np.testing.assert_array_equal(got[i], xn[i, t:t + 4, l:l + 5])


def test_crop_boxes_uses_static_size_not_box_hw():
    # Only top/left are read; the window size is the static argument.
    boxes = BOXES.copy()
    boxes[:, 2:] = 1
    np.testing.assert_array_equal(crop_boxes(_x(), tf.constant(boxes), 4, 5).numpy(),
                                  crop_boxes(_x(), tf.constant(BOXES), 4, 5).numpy())


def test_paste_boxes_places_patch_and_zeros_elsewhere():
    patch = tf.constant(np.arange(3 * 4 * 5 * 2, dtype=np.float32).reshape(3, 4, 5, 2) + 1.0)
    got = paste_boxes(patch, tf.constant(BOXES), (8, 9)).numpy()
    assert got.shape == (3, 8, 9, 2)
    expected = np.zeros((3, 8, 9, 2), np.float32)
    for i, (t, l, _, _) in enumerate(BOXES):
        expected[i, t:t + 4, l:l + 5] = patch.numpy()[i]
    np.testing.assert_array_equal(got, expected)


def test_crop_paste_round_trip():
    x = _x()
    boxes = tf.constant(BOXES)
    patch = crop_boxes(x, boxes, 4, 5)
    # crop(paste(p)) = p
    pasted = paste_boxes(patch, boxes, (8, 9))
    np.testing.assert_array_equal(crop_boxes(pasted, boxes, 4, 5).numpy(), patch.numpy())
    # paste(crop(x)) = x * box mask
    mask = _box_mask(BOXES, (8, 9), 4, 5)
    np.testing.assert_array_equal(paste_boxes(patch, boxes, (8, 9)).numpy(), x.numpy() * mask)


def test_paste_crop_gradient_is_box_mask():
    x = tf.Variable(_x())
    weights = tf.constant(np.random.default_rng(0).normal(size=(3, 8, 9, 2)).astype(np.float32))
    boxes = tf.constant(BOXES)
    with tf.GradientTape(persistent=True) as tape:
        patch = crop_boxes(x, boxes, 4, 5)
        y = tf.reduce_sum(paste_boxes(patch, boxes, (8, 9)) * weights)
        patch_sum = tf.reduce_sum(patch)
    mask = _box_mask(BOXES, (8, 9), 4, 5)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), weights.numpy() * mask, rtol=1e-6)
    # The crop alone scatters ones into the box.
    np.testing.assert_array_equal(tape.gradient(patch_sum, x).numpy(),
                                  np.broadcast_to(mask, (3, 8, 9, 2)))


def test_paste_boxes_gradient_wrt_patch():
    patch = tf.Variable(tf.ones([3, 4, 5, 1]))
    weights = tf.constant(np.arange(3 * 8 * 9, dtype=np.float32).reshape(3, 8, 9, 1))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(paste_boxes(patch, tf.constant(BOXES), (8, 9)) * weights)
    grad = tape.gradient(y, patch).numpy()
    for i, (t, l, _, _) in enumerate(BOXES):
        np.testing.assert_array_equal(grad[i], weights.numpy()[i, t:t + 4, l:l + 5])
