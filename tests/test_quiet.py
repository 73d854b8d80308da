"""Quiet programs: TensorFlow's C++ start-up notices are hidden, real errors are not."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from piigan_tf import loading
from piigan_tf.cli import common

ROOT = Path(__file__).resolve().parent.parent
#: An absl log line: severity letter, MMDD, time, thread, file:line].
ABSL_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog", re.M)


def test_noise_filter_drops_the_start_up_notices_only():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796557012.671103    7075 cudart_stub.cc:31] Could not find cuda drivers "
        "on your machine, GPU will not be used.",
        "E0000 00:00:1796557018.275160    7075 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
        "I0000 00:00:1796557124.702344    8267 cpu_feature_guard.cc:227] This TensorFlow binary "
        "is optimized to use available CPU instructions in performance-critical operations.",
    ]
    real = ["E0000 00:00:1.0  1 op_kernel.cc:1] OUT_OF_RANGE: End of sequence",
            "Traceback (most recent call last):", "ImportError: libfoo.so: cannot open"]
    assert all(common.TF_LOAD_NOISE.search(line) for line in noise)
    assert not any(common.TF_LOAD_NOISE.search(line) for line in real)


def test_every_program_has_verbose():
    for name in ("train", "sample", "evaluate", "export", "demo", "pretrained", "convert",
                 "learning_curve", "flist"):
        module = __import__(f"piigan_tf.cli.{name}", fromlist=["build_parser"])
        verbose = [a for a in module.build_parser()._actions if "--verbose" in a.option_strings]
        assert len(verbose) == 1 and verbose[0].default is False, name


@pytest.mark.skipif(not loading.is_model_folder(loading.PRETRAINED_DIR),
                    reason="the shipped model pretrained/celeba64 is missing")
def test_sampling_program_prints_no_tensorflow_log(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "test.py", "--num_samples", "2", "--seed", "1",
         "--checkpoint_dir", str(loading.PRETRAINED_DIR), "--output", str(tmp_path / "g.png")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not ABSL_LINE.search(result.stderr), result.stderr
    assert "2 samples" in result.stdout


def test_train_shows_its_own_info_and_only_warnings_of_other_libraries():
    import logging

    import tensorflow  # noqa: F401  (absl, which logs those notes, is configured by then)

    from piigan_tf.cli.train import configure_logging

    root, ours, absl = logging.getLogger(), logging.getLogger("piigan_tf"), logging.getLogger("absl")
    saved = root.level, ours.level, absl.level
    absl.setLevel(logging.NOTSET)  # as in a fresh train.py process (other tests may have set it)
    try:
        configure_logging(verbose=False)
        assert ours.isEnabledFor(logging.INFO)
        assert logging.getLogger("piigan_tf.training").isEnabledFor(logging.INFO)
        assert not logging.getLogger("absl").isEnabledFor(logging.INFO)  # "Sharding callback ..."
        assert logging.getLogger("absl").isEnabledFor(logging.WARNING)
        configure_logging(verbose=True)
        assert logging.getLogger("absl").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
        absl.setLevel(saved[2])
