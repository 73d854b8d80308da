"""Tests for piigan_tf.data.masks."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from piigan_tf.data import masks as masks_lib

IMG = (128, 128)
BOX = (64, 64)


def _numpy_bbox2mask(img_hw, box, dh, dw):
    """The reference bbox2mask with fixed jitter."""
    mask = np.zeros([*img_hw, 1], np.float32)
    top, left, h, w = box
    mask[top + dh : top + h - dh, left + dw : left + w - dw] = 1.0
    return mask


def _hole_extent(mask):
    rows = np.flatnonzero(mask[..., 0].any(axis=1))
    cols = np.flatnonzero(mask[..., 0].any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def test_box_without_jitter_is_the_reference_box():
    mask, box = masks_lib.make_mask(tf.constant([1, 2]), IMG, BOX, max_delta_hw=(0, 0))
    assert mask.shape == (128, 128, 1) and mask.dtype == tf.float32
    assert box.dtype == tf.int32
    assert box.numpy().tolist() == [32, 32, 64, 64]  # (HEIGHT//2, WIDTH//2) at 128/64
    np.testing.assert_array_equal(mask.numpy(), _numpy_bbox2mask(IMG, (32, 32, 64, 64), 0, 0))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_box_equals_numpy_bbox2mask_for_its_jitter(seed):
    mask, box = masks_lib.make_mask(tf.constant([seed, 5]), IMG, BOX, max_delta_hw=(8, 8))
    mask = mask.numpy()
    top, bottom, left, right = _hole_extent(mask)
    dh, dw = top - 32, left - 32
    assert 0 <= dh <= 4 and 0 <= dw <= 4
    # Same shrink on opposite sides, rectangle filled: exactly bbox2mask(dh, dw).
    np.testing.assert_array_equal(mask, _numpy_bbox2mask(IMG, box.numpy(), dh, dw))


def test_jitter_covers_its_inclusive_range():
    masks, boxes = masks_lib.make_masks(tf.constant([3, 4]), 400, IMG, BOX, max_delta_hw=(8, 6))
    masks = masks.numpy()
    dh = {(64 - int(m[..., 0].any(axis=1).sum())) // 2 for m in masks}
    dw = {(64 - int(m[..., 0].any(axis=0).sum())) // 2 for m in masks}
    assert dh == {0, 1, 2, 3, 4}
    assert dw == {0, 1, 2, 3}
    assert (boxes.numpy() == [32, 32, 64, 64]).all()


def test_random_box_respects_margins_and_exclusive_upper_bound():
    masks, boxes = masks_lib.make_masks(
        tf.constant([9, 9]), 2000, IMG, (40, 30), margins_hw=(10, 5), mask_type="random_box"
    )
    boxes = boxes.numpy()
    top, left = boxes[:, 0], boxes[:, 1]
    # top in [10, 128 - 10 - 40), left in [5, 128 - 5 - 30)
    assert top.min() == 10 and top.max() == 77
    assert left.min() == 5 and left.max() == 92
    assert (boxes[:, 2:] == [40, 30]).all()
    masks = masks.numpy()
    for m, (t, l, h, w) in zip(masks[:50], boxes[:50]):
        outside = m.copy()
        outside[t : t + h, l : l + w] = 0
        assert outside.sum() == 0 and m.sum() > 0


def test_random_box_empty_range_uses_margin():
    _, boxes = masks_lib.make_masks(tf.constant([1, 1]), 20, (64, 64), (64, 64), mask_type="random_box")
    assert (boxes.numpy()[:, :2] == 0).all()


def test_free_form_is_inside_its_box_and_covers_enough():
    masks, boxes = masks_lib.make_masks(tf.constant([5, 6]), 300, IMG, BOX, mask_type="free_form")
    masks, boxes = masks.numpy(), boxes.numpy()
    assert set(np.unique(masks)) <= {0.0, 1.0}
    coverages = []
    for m, (t, l, h, w) in zip(masks, boxes):
        inside = m[t : t + h, l : l + w].sum()
        assert inside == m.sum()
        coverages.append(inside / (h * w))
    coverages = np.array(coverages)
    assert coverages.min() >= masks_lib.FREE_FORM_MIN_COVERAGE
    assert coverages.max() < 0.9  # strokes, not filled boxes
    assert len({m.tobytes() for m in masks}) == len(masks)


def test_free_form_small_box_still_covers_minimum():
    masks, _ = masks_lib.make_masks(tf.constant([0, 0]), 200, (32, 32), (12, 16), mask_type="free_form")
    coverage = masks.numpy().sum(axis=(1, 2, 3)) / (12 * 16)
    assert coverage.min() >= masks_lib.FREE_FORM_MIN_COVERAGE


@pytest.mark.parametrize("mask_type", masks_lib.RANDOM_MASK_TYPES)
def test_per_sample_masks_differ_and_seed_reproduces(mask_type):
    seed = tf.constant([11, 12], tf.int64)
    masks, boxes = masks_lib.make_masks(seed, 16, IMG, BOX, mask_type=mask_type)
    again, again_boxes = masks_lib.make_masks(seed, 16, IMG, BOX, mask_type=mask_type)
    other, _ = masks_lib.make_masks(tf.constant([11, 13], tf.int64), 16, IMG, BOX, mask_type=mask_type)
    np.testing.assert_array_equal(masks.numpy(), again.numpy())
    np.testing.assert_array_equal(boxes.numpy(), again_boxes.numpy())
    assert len({m.tobytes() for m in masks.numpy()}) > 1
    assert not np.array_equal(masks.numpy(), other.numpy())


@pytest.mark.parametrize("mask_type", masks_lib.MASK_TYPES)
def test_masks_work_in_graphs_and_tf_data(mask_type):
    @tf.function(input_signature=[tf.TensorSpec([2], tf.int64)])
    def graph(seed):
        return masks_lib.make_masks(seed, 4, (32, 48), (16, 16), mask_type=mask_type)

    seed = tf.constant([2, 3], tf.int64)
    eager = masks_lib.make_masks(seed, 4, (32, 48), (16, 16), mask_type=mask_type)
    traced = graph(seed)
    np.testing.assert_array_equal(eager[0].numpy(), traced[0].numpy())
    assert traced[0].shape == (4, 32, 48, 1)

    ds = tf.data.Dataset.range(3).map(
        lambda i: masks_lib.make_mask(tf.stack([i, i]), (32, 48), (16, 16), mask_type=mask_type)
    )
    for mask, box in ds:
        assert mask.shape == (32, 48, 1) and box.shape == (4,)


def test_box_mask_helper():
    mask = masks_lib.box_mask((6, 5), 1, 2, 3, 2).numpy()
    expected = np.zeros((6, 5, 1), np.float32)
    expected[1:4, 2:4] = 1
    np.testing.assert_array_equal(mask, expected)
    clipped = masks_lib.box_mask((4, 4), tf.constant(2), 2, 5, 5).numpy()
    assert clipped.sum() == 4


def test_invalid_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="random_box"):
        masks_lib.make_mask(tf.constant([0, 0]), IMG, BOX, mask_type="circle")
    with pytest.raises(ValueError, match="fit"):
        masks_lib.make_mask(tf.constant([0, 0]), IMG, (200, 64))
    with pytest.raises(ValueError, match="margins"):
        masks_lib.make_mask(tf.constant([0, 0]), IMG, BOX, margins_hw=(40, 0), mask_type="random_box")


def test_load_mask_file_resizes_nearest_and_thresholds(tmp_path):
    small = np.zeros((4, 5), np.uint8)
    small[1:3, 2:4] = 200
    small[0, 0] = 127  # at the threshold: known pixel
    small[3, 4] = 128  # just above: hole
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), small)
    mask = masks_lib.load_mask_file(path, (8, 10))
    assert mask.shape == (8, 10, 1) and mask.dtype == np.float32
    expected = np.repeat(np.repeat(small > 127, 2, axis=0), 2, axis=1).astype(np.float32)
    np.testing.assert_array_equal(mask[..., 0], expected)
    assert masks_lib.load_mask_file(path, None).shape == (4, 5, 1)

    colour = np.zeros((4, 5, 4), np.uint8)
    colour[1, 1, 2] = 255  # red in BGR(A): still a hole
    colour[..., 3] = 255
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    assert masks_lib.load_mask_file(tmp_path / "colour.png", None)[..., 0].sum() == 1

    wide = np.zeros((3, 3), np.uint16)
    wide[1, 1] = 65535
    cv2.imwrite(str(tmp_path / "deep.png"), wide)
    assert masks_lib.load_mask_file(tmp_path / "deep.png", (3, 3)).sum() == 1


def test_load_mask_file_errors_name_the_file(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="junk.png"):
        masks_lib.load_mask_file(junk, (8, 8))
    with pytest.raises(FileNotFoundError, match="absent.png"):
        masks_lib.load_mask_file(tmp_path / "absent.png", (8, 8))


def test_center_is_the_whole_box_at_the_centre_whatever_the_seed():
    masks, boxes = masks_lib.make_masks(tf.constant([5, 6]), 3, (32, 48), (16, 20), mask_type="center")
    expected = np.zeros((32, 48, 1), np.float32)
    expected[8:24, 14:34] = 1
    for mask in masks.numpy():
        np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(boxes.numpy(), [[8, 14, 16, 20]] * 3)
    other, _ = masks_lib.center_masks([1, 2], 3, (32, 48), (16, 20))
    np.testing.assert_array_equal(other.numpy(), masks.numpy())


def test_image_mask_clips_the_box_to_any_image_and_matches_make_mask():
    small = masks_lib.image_mask("center", [0, 0], (10, 7), (16, 16))
    assert small.dtype == np.uint8 and small.shape == (10, 7, 1) and (small == 255).all()
    np.testing.assert_array_equal(masks_lib.center_box_mask((30, 37), (16, 16)),
                                  masks_lib.image_mask("center", [9, 9], (30, 37), (16, 16)))
    for kind in masks_lib.RANDOM_MASK_TYPES:
        mask = masks_lib.image_mask(kind, [3, 4], (40, 40), (16, 16), (8, 8))
        made, _ = masks_lib.make_mask([3, 4], (40, 40), (16, 16), (8, 8), (0, 0), kind)
        np.testing.assert_array_equal(mask, (made.numpy() > 0.5).astype(np.uint8) * 255)
        assert masks_lib.image_mask(kind, [3, 4], (9, 12), (16, 16), (8, 8)).any()
