"""Configuration: reference defaults, presets, overrides, validation, round trips."""

import pytest

from piigan_tf.config import PRESETS, Config, ConfigError, load_config, parse_overrides
from piigan_tf.model import LossWeights

REFERENCE_DEFAULTS = {
    "DATASET": "celeba", "RANDOM_CROP": True, "VAL": True, "GAN": "wgan_gp",
    "GAN_LOSS_ALPHA": 0.001, "WGAN_GP_LAMBDA": 10.0, "COARSE_L1_ALPHA": 1.2,
    "L1_LOSS_ALPHA": 1.2, "AE_LOSS_ALPHA": 1.2, "LOSS_KL": 0.1, "REGRESSION_Z_LOSS_ALPHA": 1.2,
    "GLOBAL_WGAN_LOSS_ALPHA": 1.0, "AE_LOSS": True, "REGRESSION_Z_LOSS": True, "PADDING": "SAME",
    "NUM_GPUS": 1, "TRAIN_SPE": 5000, "MAX_ITERS": 1_000_000, "VIZ_MAX_OUT": 10,
    "GRADIENT_CLIP": False, "GRADIENT_CLIP_VALUE": 0.1, "VAL_PSTEPS": 300, "STATIC_VIEW_SIZE": 15,
    "IMG_SHAPES": [128, 128, 3], "HEIGHT": 64, "WIDTH": 64, "MAX_DELTA_HEIGHT": 8,
    "MAX_DELTA_WIDTH": 8, "BATCH_SIZE": 13, "VERTICAL_MARGIN": 0, "HORIZONTAL_MARGIN": 0,
    "MODEL_RESTORE": "", "LEARNING_RATE": 1e-4, "BETA_1": 0.5, "BETA_2": 0.9, "D_STEPS": 5,
}


def test_load_config_reference_defaults():
    config = load_config()
    for key, value in REFERENCE_DEFAULTS.items():
        assert getattr(config, key) == value, key
        assert type(getattr(config, key)) is type(value), key
    assert config.img_hw == (128, 128) and config.box_hw == (64, 64)
    # setting.yml and the dataclass defaults agree.
    assert config == Config()
    assert LossWeights.from_config(config) == LossWeights()


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="BATCH_SIZES"):
        load_config(overrides={"BATCH_SIZES": 4})


def test_unknown_key_in_yaml_file_is_named(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("BATCH_SIZE: 4\nLOSS_KLL: 0.2\n")
    with pytest.raises(ConfigError, match="LOSS_KLL"):
        load_config(path)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yml")


@pytest.mark.parametrize("key,value", [("BATCH_SIZE", "x"), ("BATCH_SIZE", 2.5),
                                       ("BATCH_SIZE", True), ("RANDOM_CROP", "yes"),
                                       ("GAN_LOSS_ALPHA", "big"), ("IMG_SHAPES", "128"),
                                       ("DATASET", 3)])
def test_wrong_type_is_named(key, value):
    with pytest.raises(ConfigError, match=key):
        load_config(overrides={key: value})


def test_invalid_values_are_named():
    with pytest.raises(ConfigError, match="HEIGHT"):
        load_config(overrides={"HEIGHT": 40})
    with pytest.raises(ConfigError, match="IMG_SHAPES"):
        load_config(overrides={"IMG_SHAPES": [100, 128, 3]})
    with pytest.raises(ConfigError, match="BATCH_SIZE"):
        load_config(overrides={"BATCH_SIZE": 0})
    with pytest.raises(ConfigError, match="EXTRACTOR_ACTIVATION"):
        load_config(overrides={"EXTRACTOR_ACTIVATION": "relu"})


def test_parse_overrides_reads_yaml_values():
    got = parse_overrides(["BATCH_SIZE=8", "IMG_SHAPES=[64, 64, 3]", "RANDOM_CROP=false",
                           "DATASET=mauflex", "LEARNING_RATE=0.0002", "MODEL_RESTORE=",
                           "GAN_LOSS_ALPHA=1.0e-3", "DATA_DIR=a=b"])
    assert got == {"BATCH_SIZE": 8, "IMG_SHAPES": [64, 64, 3], "RANDOM_CROP": False,
                   "DATASET": "mauflex", "LEARNING_RATE": 0.0002, "MODEL_RESTORE": "",
                   "GAN_LOSS_ALPHA": 0.001, "DATA_DIR": "a=b"}
    config = load_config(overrides=got)
    assert config.BATCH_SIZE == 8 and config.img_hw == (64, 64) and config.RANDOM_CROP is False
    # An int where a float is expected is accepted and stored as a float.
    assert load_config(overrides=parse_overrides(["LOSS_KL=1"])).LOSS_KL == 1.0
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["BATCH_SIZE"])


def test_parse_overrides_exponent_without_dot():
    assert load_config(overrides=parse_overrides(["LEARNING_RATE=1e-4"])).LEARNING_RATE == 1e-4


def test_presets():
    tiny = load_config(preset="tiny")
    assert tiny.img_hw == (32, 32) and tiny.box_hw == (16, 16) and tiny.BATCH_SIZE == 2
    for key, value in PRESETS["quick"].items():
        assert getattr(load_config(preset="quick"), key) == value
    # Overrides win over the preset; untouched keys keep setting.yml's values.
    config = load_config(preset="tiny", overrides={"BATCH_SIZE": 3})
    assert config.BATCH_SIZE == 3 and config.img_hw == (32, 32) and config.LOSS_KL == 0.1
    with pytest.raises(ConfigError, match="nope"):
        load_config(preset="nope")


def test_config_dump_round_trip(tmp_path):
    config = load_config(preset="tiny", overrides={"LOSS_KL": 0.25, "SEED": 5})
    path = config.dump(tmp_path / "run" / "config.yml")
    assert load_config(path) == config


def test_reference_only_keys_are_accepted(tmp_path):
    # A reference setting.yml carries keys the port ignores.
    path = tmp_path / "ref.yml"
    path.write_text("BATCH_SIZE: 13\nGPU_ID: -1\nL1_LOSS: true\nTV_LOSS: false\n")
    assert load_config(path).BATCH_SIZE == 13
