"""One rule brings an image to a model's size: the validation pipeline and sampling agree.

The same files go through the training pipeline's deterministic path
(``builders.validation_batch``, the static view) and through the path
inference, evaluation and the demo take (``load_image_file`` then
``data.preprocess.fit_to_model``); the arrays must be identical, for models
that resize whole images and models that crop, and for images smaller and
larger than the model's size.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from piigan_tf.builders import validation_batch
from piigan_tf.config import load_config
from piigan_tf.data import load_image_file
from piigan_tf.data.preprocess import bring_to_size, fit_to_model, grid_windows

#: (name, height, width): smaller on both sides, smaller on one, larger, odd sizes.
SIZES = [("small.png", 20, 26), ("thin.png", 20, 90), ("large.png", 70, 50),
         ("odd.png", 33, 47), ("photo.jpg", 81, 100)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preprocess")
    rng = np.random.default_rng(0)
    paths = []
    for name, h, w in SIZES:
        # Smooth content plus noise: bilinear scaling and JPEG both have work to do.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([yy * 255 / h, xx * 255 / w, (yy + xx) * 127 / (h + w)], -1)
        image = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        path = folder / name
        cv2.imwrite(str(path), image[:, :, ::-1])
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("random_crop", [False, True], ids=["resize_model", "crop_model"])
def test_validation_pipeline_and_sampling_bring_images_to_the_model_identically(files,
                                                                              random_crop):
    config = load_config(preset="tiny", overrides={"RANDOM_CROP": random_crop,
                                                   "STATIC_VIEW_SIZE": len(files)})
    batch = validation_batch(config, files)
    pipeline = np.round((batch["images"].numpy() + 1.0) * 127.5).astype(np.uint8)
    for path, through_pipeline in zip(files, pipeline):
        fitted = fit_to_model(load_image_file(path), config)
        assert fitted.shape == (*config.img_hw, 3) and fitted.dtype == np.uint8
        np.testing.assert_array_equal(through_pipeline, fitted, err_msg=Path(path).name)


def test_small_images_are_scaled_up_with_the_training_ceil():
    # 20 x 30 to cover 32 x 32: s = 1.6, (ceil(32.0), ceil(48.0)) -> 32 x 48, then the centre.
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 15:] = 255  # a vertical edge in the middle stays in the middle
    out = bring_to_size(image, (32, 32), "center")
    assert out.shape == (32, 32, 3)
    assert (out[:, :14] == 0).all() and (out[:, 18:] == 255).all()
    # 6 x 10 to cover 32 x 32: s = 32/6, width ceil(53.33) = 54 (round() would give 53
    # and put the window one column apart): the centre of the 32 x 54 scaling.
    wide = np.tile(np.arange(10, dtype=np.uint8)[None, :, None] * 25, (6, 1, 3))
    np.testing.assert_array_equal(
        bring_to_size(wide, (32, 32), "center"),
        bring_to_size(bring_to_size(wide, (32, 54), "resize"), (32, 32), "center"))
    with pytest.raises(ValueError, match="crop must be one of"):
        bring_to_size(image, (32, 32), "stretch")


def test_grid_windows_spread_evenly_from_edge_to_edge():
    image = np.arange(50 * 70 * 3, dtype=np.uint32).reshape(50, 70, 3).astype(np.uint8)
    windows = grid_windows(image, (32, 32), 2)
    assert [corner for corner, _ in windows] == [(0, 0), (0, 38), (18, 0), (18, 38)]
    for (y, x), window in windows:
        np.testing.assert_array_equal(window, image[y:y + 32, x:x + 32])
    three = [corner for corner, _ in grid_windows(image, (32, 32), 3)]
    assert three == [(y, x) for y in (0, 9, 18) for x in (0, 19, 38)]
    # One a side is the centre window, as the centre crop cuts it.
    (_, centre), = grid_windows(image, (32, 32), 1)
    np.testing.assert_array_equal(centre, bring_to_size(image, (32, 32), "center"))
    with pytest.raises(ValueError, match="per_side"):
        grid_windows(image, (32, 32), 0)


def test_grid_windows_scale_a_small_image_up_as_the_centre_crop_does():
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 15:] = 255
    windows = grid_windows(image, (32, 32), 2)
    scaled = bring_to_size(image, (32, 48), "resize")  # s = 1.6: 32 x 48
    assert [corner for corner, _ in windows] == [(0, 0), (0, 16), (0, 0), (0, 16)]
    np.testing.assert_array_equal(windows[1][1], scaled[:, 16:])
    np.testing.assert_array_equal(windows[0][1], scaled[:, :32])
