"""The MauFlex setting: lists split by frame, the mauflex128 preset, aerial examples,
tiles smaller than the window, and the real lists where ../shared/data is present.

Tiles are generated here (no MauFlex pixel is part of the project); the test
on the real tiles skips with a reason where the shared data is absent.
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.cli import flist as flist_cli  # noqa: E402
from piigan_tf.data import flist  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_MAUFLEX = ROOT.parent / "shared" / "data" / "mauflex"


def write_tiles(folder: Path, frames=("02", "08", "11"), per_frame=3, side=64) -> list[Path]:
    """Fake aerial tiles named like the MauFlex tiling: mauflex_f<frame>_y<y>_x<x>.jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for frame in frames:
        for i in range(per_frame):
            tile = cv2.resize(rng.integers(0, 256, (6, 6, 3)).astype(np.uint8), (side, side))
            path = folder / f"mauflex_f{frame}_y0000_x{512 * i:04d}.jpg"
            cv2.imwrite(str(path), tile)
            paths.append(path)
    return paths


# --------------------------------------------------------------- lists
def test_val_match_holds_out_whole_frames(tmp_path):
    write_tiles(tmp_path / "tiles")
    assert flist_cli.main(["--folder", str(tmp_path / "tiles"), "--name", "mauflex",
                       "--out", str(tmp_path / "data"), "--val_match", "_f11_"]) == 0
    train = flist.read_flist(tmp_path / "data" / "mauflex" / "train.flist")
    val = flist.read_flist(tmp_path / "data" / "mauflex" / "val.flist")
    assert len(train) == 6 and len(val) == 3
    assert all("_f11_" in Path(p).name for p in val)
    assert not any("_f11_" in Path(p).name for p in train)
    # Several groups; the order within each list is the seeded shuffle, reproducible.
    train2, val2 = flist.split_by_match(sorted(train + val), ["_f11_", "_f08_"])
    assert len(val2) == 6 and {Path(p).name.split("_")[1] for p in val2} == {"f08", "f11"}


def test_val_match_errors_name_the_substring(tmp_path, capsys):
    write_tiles(tmp_path / "tiles", frames=("02",))
    with pytest.raises(SystemExit):
        flist_cli.main(["--folder", str(tmp_path / "tiles"), "--name", "m", "--out", str(tmp_path),
                    "--val_match", "_f99_"])
    assert "no file name contains '_f99_'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        flist_cli.main(["--folder", str(tmp_path / "tiles"), "--name", "m", "--out", str(tmp_path),
                    "--val_match", "_f02_"])
    assert "nothing left to train on" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        flist_cli.main(["--folder", str(tmp_path / "tiles"), "--name", "m", "--out", str(tmp_path),
                    "--val_match", "_f02_", "--val_folder", str(tmp_path)])
    assert "give one" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED_MAUFLEX.is_dir(), reason="../shared/data/mauflex is not here")
def test_the_real_tiles_split_by_frame(tmp_path):
    """266 tiles of frames 02, 08, 09 and 11: frame 11 is validation (77 tiles)."""
    train, val = flist.split_by_match(flist.list_images(SHARED_MAUFLEX), ["_f11_"])
    assert len(train) == 189 and len(val) == 77
    assert {Path(p).name.split("_")[1] for p in train} == {"f02", "f08", "f09"}


# -------------------------------------------------------------- preset
def test_mauflex128_preset_is_the_reference_setting():
    config = load_config(preset="mauflex128")
    reference = load_config()  # setting.yml: the reference's defaults
    for key in ("IMG_SHAPES", "HEIGHT", "WIDTH", "MAX_DELTA_HEIGHT", "MAX_DELTA_WIDTH",
                "RANDOM_CROP", "MASK_TYPE", "GAN_LOSS_ALPHA", "WGAN_GP_LAMBDA", "COARSE_L1_ALPHA",
                "AE_LOSS_ALPHA", "LOSS_KL", "REGRESSION_Z_LOSS_ALPHA", "GLOBAL_WGAN_LOSS_ALPHA",
                "LEARNING_RATE", "BETA_1", "BETA_2", "D_STEPS"):
        assert getattr(config, key) == getattr(reference, key), key
    assert config.img_hw == (128, 128) and config.box_hw == (64, 64) and config.RANDOM_CROP
    assert config.DATASET == "mauflex" and config.EVAL_STEPS > 0
    assert config.MODEL_RESTORE == "checkpoints/mauflex128"


def test_tiles_smaller_than_the_window_are_scaled_up_as_training_does(tmp_path):
    """A 100x60 tile: the training crop and the evaluation crop both scale it up to cover 128."""
    import tensorflow as tf

    from piigan_tf import evaluation as E
    from piigan_tf.data import random_crop_image

    rng = np.random.default_rng(1)
    small = cv2.resize(rng.integers(0, 256, (5, 5, 3)).astype(np.uint8), (60, 100))  # h 100, w 60
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), small[:, :, ::-1])
    cropped = random_crop_image(tf.constant(small), (128, 128), tf.constant([0, 0], tf.int64)).numpy()
    assert cropped.shape == (128, 128, 3)
    names, images = E.load_eval_images([str(path)], (128, 128), "center")
    assert images.shape == (1, 128, 128, 3)
    # Scaled by 128 / 60 (the short side), not stretched: the colours stay the tile's.
    assert abs(images[0].mean() - small.mean()) < 8


def test_aerial_models_are_shown_public_domain_textures():
    from piigan_tf.data.sample import TEXTURES, example_textures
    from piigan_tf.inference import example_images

    textures = example_textures()
    assert [n for n, _ in textures] == list(TEXTURES) == ["grass", "gravel"]
    assert all(t.shape == (512, 512, 3) and t.dtype == np.uint8 for _, t in textures)
    examples = example_images(load_config(preset="mauflex128"), 2)
    assert [n for n, _ in examples] == ["grass", "gravel"]
    # Native-scale centre windows (RANDOM_CROP), not the whole texture resized.
    np.testing.assert_array_equal(examples[0][1], textures[0][1][192:320, 192:320])
    assert example_images(load_config(preset="celeba64"), 1)[0][0] == "astronaut_face"


def test_textures_are_tinted_by_brightness_rank_with_the_aerial_ramp():
    import skimage.data

    from piigan_tf.data.sample import AERIAL_RAMP, example_textures, tint

    ramp = ((0.0, (0, 0, 0)), (1.0, (200, 100, 0)))
    grey = np.repeat(np.array([10, 10, 50, 250], np.uint8), 25).reshape(10, 10)
    # Mid-rank quantiles 0.25, 0.625, 0.875 of the three levels.
    np.testing.assert_array_equal(tint(grey, ramp)[0, 0], [50, 25, 0])
    np.testing.assert_array_equal(tint(grey, ramp)[5, 0], [125, 62, 0])  # 62.5 rounds to even
    np.testing.assert_array_equal(tint(grey, ramp)[9, 9], [175, 88, 0])
    grass = skimage.data.grass()
    tinted = dict(example_textures())["grass"]
    brightness = tinted.astype(float) @ [0.299, 0.587, 0.114]
    # Brighter grey stays brighter colour; the colours span the ramp.
    assert np.all(np.diff([brightness[grass == v].mean() for v in np.unique(grass)]) >= -1e-9)
    assert tinted[..., 1].mean() > tinted[..., 2].mean() + 30  # green foliage, not grey
    lo, hi = AERIAL_RAMP[0][1], AERIAL_RAMP[-1][1]
    assert (tinted >= np.minimum(lo, hi)).all() and (tinted <= np.maximum(lo, hi)).all()


def test_colour_ramp_is_the_mean_colour_near_each_brightness_quantile():
    from piigan_tf.data.sample import colour_ramp

    # Half the pixels dark red, half bright blue-white, over two images.
    dark = np.zeros((10, 10, 3), np.uint8)
    dark[..., 0] = 100
    bright = np.full((10, 10, 3), 200, np.uint8)
    ramp = colour_ramp([dark, bright], quantiles=(0.02, 0.25, 0.75, 0.98), width=0.01)
    assert ramp == ((0.02, (100, 0, 0)), (0.25, (100, 0, 0)), (0.75, (200, 200, 200)),
                    (0.98, (200, 200, 200)))
    # Straddling the boundary, the two halves are averaged.
    assert colour_ramp([dark, bright], quantiles=(0.5,), width=0.1) == ((0.5, (150, 100, 100)),)
