"""Shared pytest configuration and fixtures."""

import os
from pathlib import Path

import pytest

# The tests run the kernels that train.py uses on every CPU: oneDNN on (TF
# enables it by itself only on CPUs with AVX-512). Set before TF is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test; deselect with -m 'not slow'")


def _write_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A tiny-preset model saved as train.py saves it (random weights, no training)."""
    import tensorflow as tf

    from piigan_tf.config import load_config
    from piigan_tf.model import PiiGAN

    config = load_config(preset="tiny", overrides={"SEED": seed})
    model = PiiGAN.from_config_object(config)
    model.build()
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(directory), 3)
    manager.save(checkpoint_number=1)
    config.dump(directory / "config.yml")
    return directory


@pytest.fixture(scope="session")
def write_checkpoint():
    """``write_checkpoint(directory, seed=0) -> directory``: a tiny-preset checkpoint
    folder as train.py writes it (random weights), with its config.yml."""
    return _write_checkpoint
