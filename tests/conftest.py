"""Shared pytest configuration."""

import os

# The tests run the kernels that train.py uses on every CPU: oneDNN on (TF
# enables it by itself only on CPUs with AVX-512). Set before TF is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test; deselect with -m 'not slow'")
