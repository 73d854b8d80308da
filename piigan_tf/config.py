"""Typed training configuration: reference-compatible YAML plus overrides.

The keys are the reference's ``setting.yml`` keys (UPPERCASE, as upstream) and
a few the port adds. ``load_config`` reads a YAML file, applies presets and
``KEY=VALUE`` overrides, and validates every key and type, so a typo or a
wrong type fails at start-up with the key named instead of deep inside
TensorFlow hours later.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "setting.yml"
#: The compositing rules of ``piigan_tf.blending`` (the ``BLEND`` key), kept
#: here so that configs and command lines name them without TensorFlow.
BLENDS = ("paste", "poisson")


class ConfigError(ValueError):
    """A configuration key is unknown or has a value of the wrong type."""


@dataclasses.dataclass
class Config:
    """All training settings. Field names are the YAML keys."""

    # data
    DATASET: str = "celeba"
    DATA_DIR: str = "data"
    RANDOM_CROP: bool = True
    VAL: bool = True
    IMG_SHAPES: list = dataclasses.field(default_factory=lambda: [128, 128, 3])
    HEIGHT: int = 64
    WIDTH: int = 64
    MAX_DELTA_HEIGHT: int = 8
    MAX_DELTA_WIDTH: int = 8
    VERTICAL_MARGIN: int = 0
    HORIZONTAL_MARGIN: int = 0
    MASK_TYPE: str = "box"
    BATCH_SIZE: int = 13
    STATIC_VIEW_SIZE: int = 15
    # model
    PADDING: str = "SAME"
    EXTRACTOR_ACTIVATION: str = "elu"
    # inference: how completions join the known pixels (piigan_tf.blending;
    # training always pastes, as the reference does)
    BLEND: str = "paste"
    # losses
    GAN: str = "wgan_gp"
    GAN_LOSS_ALPHA: float = 0.001
    WGAN_GP_LAMBDA: float = 10.0
    COARSE_L1_ALPHA: float = 1.2
    L1_LOSS_ALPHA: float = 1.2
    AE_LOSS_ALPHA: float = 1.2
    LOSS_KL: float = 0.1
    REGRESSION_Z_LOSS_ALPHA: float = 1.2
    GLOBAL_WGAN_LOSS_ALPHA: float = 1.0
    AE_LOSS: bool = True
    REGRESSION_Z_LOSS: bool = True
    # optimisation
    LEARNING_RATE: float = 1e-4
    BETA_1: float = 0.5
    BETA_2: float = 0.9
    D_STEPS: int = 5
    GRADIENT_CLIP: bool = False
    GRADIENT_CLIP_VALUE: float = 0.1
    # schedule
    NUM_GPUS: int = 1
    TRAIN_SPE: int = 5000
    MAX_ITERS: int = 1000000
    VAL_PSTEPS: int = 300
    VIZ_MAX_OUT: int = 10
    EVAL_STEPS: int = 0
    EVAL_IMAGES: int = 50
    EVAL_SAMPLES: int = 10
    SEED: int = 0
    LOG_DIR: str = "logs"
    CHECKPOINT_DIR: str = "checkpoints"
    MODEL_RESTORE: str = ""

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------
    @property
    def img_hw(self) -> tuple[int, int]:
        return int(self.IMG_SHAPES[0]), int(self.IMG_SHAPES[1])

    @property
    def box_hw(self) -> tuple[int, int]:
        return int(self.HEIGHT), int(self.WIDTH)

    def validate(self) -> None:
        """Checks types and value ranges; raises ConfigError naming the key."""
        hints = typing.get_type_hints(Config)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = hints[f.name]
            setattr(self, f.name, _coerce(f.name, value, expected))
        shape = self.IMG_SHAPES
        if len(shape) != 3 or shape[2] != 3 or any(int(s) <= 0 for s in shape):
            raise ConfigError(f"IMG_SHAPES must be [height, width, 3], got {shape}")
        h, w = self.img_hw
        if h % 8 or w % 8:
            raise ConfigError(f"IMG_SHAPES height and width must be multiples of 8, got {shape}")
        if self.HEIGHT % 16 or self.WIDTH % 16:
            raise ConfigError(
                f"HEIGHT and WIDTH (the hole box) must be multiples of 16 so the "
                f"extractor's four stride-2 convs divide them, got {self.HEIGHT}x{self.WIDTH}")
        if self.HEIGHT > h or self.WIDTH > w:
            raise ConfigError(f"the hole box {self.HEIGHT}x{self.WIDTH} does not fit in IMG_SHAPES {shape}")
        for key in ("BATCH_SIZE", "D_STEPS", "TRAIN_SPE", "MAX_ITERS", "VAL_PSTEPS"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.EVAL_STEPS < 0:
            raise ConfigError(f"EVAL_STEPS must be >= 0 (0: no evaluation), got {self.EVAL_STEPS}")
        for key in ("EVAL_IMAGES", "EVAL_SAMPLES"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.MASK_TYPE not in ("center", "box", "random_box", "free_form"):
            raise ConfigError("MASK_TYPE must be one of center, box, random_box, free_form; "
                              f"got {self.MASK_TYPE!r}")
        if self.EXTRACTOR_ACTIVATION not in ("elu", "leaky_relu"):
            raise ConfigError(
                f"EXTRACTOR_ACTIVATION must be 'elu' or 'leaky_relu', got {self.EXTRACTOR_ACTIVATION!r}")
        if self.BLEND not in BLENDS:
            raise ConfigError(f"BLEND must be one of {', '.join(BLENDS)}; got {self.BLEND!r}")
        if self.GAN != "wgan_gp":
            raise ConfigError(f"GAN: only 'wgan_gp' (the reference's choice) is implemented, got {self.GAN!r}")
        if self.PADDING != "SAME":
            raise ConfigError(f"PADDING: only 'SAME' (the reference's choice) is implemented, got {self.PADDING!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Config":
        return update_config(self, changes)

    def dump(self, path: str | Path) -> Path:
        """Writes the resolved config as YAML (e.g. next to the checkpoints)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        tmp.replace(path)
        return path


def _coerce(key: str, value: Any, expected: Any) -> Any:
    if expected is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if expected is float:
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if expected is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    if expected is list:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{key} must be a list of integers, got {value!r}")
        return [int(v) for v in value]
    return value


_FIELDS = {f.name for f in dataclasses.fields(Config)}
# Reference keys that the port reads but does not use (legacy or framework
# plumbing); accepted so a reference setting.yml loads unchanged.
_IGNORED_REFERENCE_KEYS = {
    "MODEL_LOG", "PRETRAIN_COARSE_NETWORK", "GAN_WITH_MASK", "DISCOUNTED_MASK",
    "RANDOM_SEED", "GPU_ID", "GRADS_SUMMARY", "DATA_FLIST", "L1_LOSS",
    "GLOBAL_DCGAN_LOSS_ALPHA", "LOAD_VGG_MODEL", "VGG_MODEL_FILE", "FEATURE_LOSS",
    "GRAMS_LOSS", "TV_LOSS", "TV_LOSS_ALPHA", "FEATURE_LOSS_ALPHA",
    "GRAMS_LOSS_ALPHA", "SPATIAL_DISCOUNTING_GAMMA",
}


def update_config(config: Config, changes: Mapping[str, Any]) -> Config:
    """Returns a copy of ``config`` with ``changes`` applied and validated."""
    values = config.to_dict()
    for key, value in changes.items():
        if key in _IGNORED_REFERENCE_KEYS:
            continue
        if key not in _FIELDS:
            close = [k for k in _FIELDS if k.startswith(key[:4].upper())]
            hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
            raise ConfigError(f"unknown config key {key!r}{hint}")
        values[key] = value
    return Config(**values)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parses ``KEY=VALUE`` strings; VALUE is read as YAML (``8``, ``true``, ``[64,64,3]``)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form KEY=VALUE")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: cannot parse value: {e}") from None
    return out


# Small configurations with the reference architecture, for laptops and CI.
PRESETS: dict[str, dict[str, Any]] = {
    # The README's quickstart: trains in a few minutes on 2 CPU cores.
    "quick": dict(DATASET="sample", IMG_SHAPES=[64, 64, 3], HEIGHT=32, WIDTH=32,
                  MAX_DELTA_HEIGHT=4, MAX_DELTA_WIDTH=4, BATCH_SIZE=4,
                  MAX_ITERS=40, TRAIN_SPE=20, VAL_PSTEPS=20, STATIC_VIEW_SIZE=4,
                  VIZ_MAX_OUT=4),
    # A CPU training recipe (README "Results"): whole aligned faces resized
    # to 64x64, a 32x32 box hole with the reference's jitter halved (8 -> 4
    # at half the box), the reference architecture and losses unchanged.
    # Trains on data/celeba/{train,val}.flist; checkpoints in checkpoints/celeba64.
    "celeba64": dict(DATASET="celeba", IMG_SHAPES=[64, 64, 3], HEIGHT=32, WIDTH=32,
                     MAX_DELTA_HEIGHT=4, MAX_DELTA_WIDTH=4, RANDOM_CROP=False,
                     BATCH_SIZE=8, MAX_ITERS=20000, TRAIN_SPE=250, VAL_PSTEPS=100,
                     STATIC_VIEW_SIZE=8, VIZ_MAX_OUT=8, EVAL_STEPS=250,
                     MODEL_RESTORE="checkpoints/celeba64"),
    # The reference's own setting on MauFlex aerial imagery (README "Results"):
    # native-scale random 128x128 windows of the tiles (RANDOM_CROP), the
    # 64x64 box hole with the reference's jitter of 8, its losses and
    # schedule; batch chosen by bench/bench_train.py on 2 CPU cores.
    # Trains on data/mauflex/{train,val}.flist (split by frame: see
    # pretrained/mauflex128/PROVENANCE.md); checkpoints in checkpoints/mauflex128.
    "mauflex128": dict(DATASET="mauflex", IMG_SHAPES=[128, 128, 3], HEIGHT=64, WIDTH=64,
                       MAX_DELTA_HEIGHT=8, MAX_DELTA_WIDTH=8, RANDOM_CROP=True,
                       BATCH_SIZE=4, MAX_ITERS=20000, TRAIN_SPE=250, VAL_PSTEPS=100,
                       STATIC_VIEW_SIZE=8, VIZ_MAX_OUT=8, EVAL_STEPS=250, EVAL_IMAGES=48,
                       MODEL_RESTORE="checkpoints/mauflex128"),
    # Unit tests: the smallest shapes the architecture allows.
    "tiny": dict(DATASET="sample", IMG_SHAPES=[32, 32, 3], HEIGHT=16, WIDTH=16,
                 MAX_DELTA_HEIGHT=2, MAX_DELTA_WIDTH=2, BATCH_SIZE=2,
                 MAX_ITERS=2, TRAIN_SPE=1, VAL_PSTEPS=1, STATIC_VIEW_SIZE=2,
                 VIZ_MAX_OUT=2),
}


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                preset: str | None = None) -> Config:
    """Loads a YAML config, then a preset, then overrides (later wins).

    Args:
        path: YAML file; defaults to the repository's ``setting.yml`` (or the
            built-in defaults when that file is absent, e.g. an installed package).
        overrides: ``{KEY: value}`` applied last.
        preset: name in ``PRESETS``.

    Raises:
        ConfigError: unknown key, wrong type or invalid value (the key is named).
        FileNotFoundError: ``path`` given but missing.
    """
    config = Config()
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file {path} not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of KEY: value")
        config = update_config(config, data)
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        config = update_config(config, PRESETS[preset])
    if overrides:
        config = update_config(config, overrides)
    return config
