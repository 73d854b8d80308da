"""piigan_tf.utils: the grid layout, the PNG writer, the training-summary grid, flow colours."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf.utils import TITLE_HEIGHT, flow_to_image, grid, image_grid, write_png  # noqa: E402


def cell(value, h, w):
    return np.full([h, w, 3], value, np.uint8)


def test_grid_places_cells_with_white_gaps_and_fills_short_rows():
    rows = [[cell(10, 4, 3), cell(20, 4, 5), cell(30, 4, 2)],  # 3 + 5 + 2 + 2 gaps = 14 wide
            [cell(40, 6, 4)]]
    out = grid(rows, pad=2)
    assert out.shape == (4 + 2 + 6, 14, 3) and out.dtype == np.uint8
    assert (out[:4, 0:3] == 10).all() and (out[:4, 5:10] == 20).all() and (out[:4, 12:14] == 30).all()
    assert (out[:4, 3:5] == 255).all() and (out[:4, 10:12] == 255).all()  # gaps between cells
    assert (out[4:6] == 255).all()                                           # gap between rows
    assert (out[6:, :4] == 40).all() and (out[6:, 4:] == 255).all()        # short row filled out
    # Cell pixels are copied, not resampled.
    noise = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(grid([[noise]], pad=2), noise)


def test_grid_titles_sit_in_a_strip_above_their_columns():
    rows = [[cell(200, 8, 40), cell(200, 8, 40)]] * 2
    out = grid(rows, pad=2, titles=["left", "right"])
    assert out.shape == (TITLE_HEIGHT + 8 + 2 + 8, 82, 3)
    strip = out[:TITLE_HEIGHT]
    assert (strip[:, :40] < 128).any() and (strip[:, 42:] < 128).any()  # dark text in each column
    body = out[TITLE_HEIGHT:]
    assert (body[:8, :40] == 200).all() and (body[:8, 42:] == 200).all()  # cells untouched
    np.testing.assert_array_equal(body, grid(rows, pad=2))


def test_grid_refuses_what_it_cannot_lay_out():
    with pytest.raises(ValueError, match="share a height"):
        grid([[cell(0, 4, 4), cell(0, 5, 4)]])
    with pytest.raises(ValueError, match="at least one"):
        grid([])


def test_image_grid_keeps_the_training_summary_contract():
    a = tf.constant(np.linspace(-1.5, 1.5, 2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3))
    b = -a
    out = image_grid([a, b])
    assert isinstance(out, tf.Tensor) and out.dtype == tf.float32
    assert out.shape == (2, 3, 8, 3)  # columns side by side, no gaps
    expected = np.clip((np.concatenate([a.numpy(), b.numpy()], axis=2) + 1) / 2, 0, 1)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-7)


def test_write_png_round_trips_and_names_the_path_on_failure(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    path = write_png(tmp_path / "new/folder/x.png", image)
    assert path == tmp_path / "new/folder/x.png"
    np.testing.assert_array_equal(cv2.imread(str(path))[:, :, ::-1], image)  # RGB kept as RGB
    (tmp_path / "a_file").write_text("")
    for bad in (tmp_path / "a_file" / "x.png",   # a file where the folder should be
                tmp_path / "no_suffix"):         # no image format for the name
        with pytest.raises(OSError, match=f"cannot write {bad}"):
            write_png(bad, image)
    with pytest.raises(ValueError, match="uint8 RGB"):
        write_png(tmp_path / "f.png", image.astype(np.float32))


def test_flow_to_image_colours_directions_and_leaves_no_motion_black():
    offsets = np.zeros([1, 2, 3, 2], np.int32)
    offsets[0, 0, 1] = (0, 2)    # right
    offsets[0, 0, 2] = (0, -2)   # left
    offsets[0, 1, 0] = (2, 0)    # down
    offsets[0, 1, 1] = (0, 1)    # right, half as far
    rgb = flow_to_image(offsets)
    assert rgb.shape == (1, 2, 3, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0, 0] == 0).all() and (rgb[0, 1, 2] == 0).all()  # no offset: black
    right, left, down, short = rgb[0, 0, 1], rgb[0, 0, 2], rgb[0, 1, 0], rgb[0, 1, 1]
    assert len({tuple(right), tuple(left), tuple(down)}) == 3          # hue = direction
    assert right.max() == 255 and 100 < short.max() < 150                # brightness = length
    assert np.argmax(right) == np.argmax(short)                          # same hue
