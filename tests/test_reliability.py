"""Faults injected into training in-process: NaN/Inf, full disk, unwritable or corrupt
checkpoints, Ctrl-C, bad dataset files. (Kills of a training process are in
``test_reliability_kill.py``; bad serving inputs in ``test_reliability_serving.py``.)

One tiny Trainer is built and traced once for the module (tracing the train
step is the expensive part); each test gives it a fresh copy of a one-step
checkpoint folder, so the tests are independent.
"""

import errno
import logging
import os
import re
import resource
import shutil
import signal
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.data import pipeline  # noqa: E402
from piigan_tf.model import D_TERMS, G_TERMS  # noqa: E402
from piigan_tf.run_logs import StepLog, read_loss_log  # noqa: E402
from piigan_tf.training import (CheckpointReadError, CheckpointWriteError,  # noqa: E402
                                Trainer, TrainingDiverged)

ROOT = Path(__file__).resolve().parent.parent


def train_main(argv) -> int:
    """``train.py``'s main(), run in this process (no new process, no traceback)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("piigan_train_cli", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def write_images(folder: Path, count: int = 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:02d}.png"), texture(40, 40, seed=i))
    return folder


def tiny_config(images: Path, data_dir: Path, **overrides):
    values = {"DATASET": str(images), "DATA_DIR": str(data_dir), "D_STEPS": 1,
              "TRAIN_SPE": 1, "VAL_PSTEPS": 100, "STATIC_VIEW_SIZE": 0, "VIZ_MAX_OUT": 1,
              "SEED": 3}
    values.update(overrides)
    return load_config(None, values, preset="tiny")


def all_variables(trainer):
    model = trainer.model
    return (list(model.weights) + list(model.g_optimizer.variables)
            + list(model.d_optimizer.variables))


def checkpoint_values(path) -> dict:
    reader = tf.train.load_checkpoint(str(path))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def assert_finite_checkpoints(folder: Path) -> list[str]:
    """Every checkpoint in the folder loads and holds only finite floats; returns their names."""
    names = sorted({p.name.split(".")[0] for p in folder.glob("ckpt-*.index")})
    for name in names:
        for key, value in checkpoint_values(folder / name).items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                assert np.isfinite(value).all(), f"{name}: {key} is not finite"
    return names


def latest_step(folder: Path) -> int:
    latest = tf.train.latest_checkpoint(str(folder))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A Trainer traced and trained one step; its checkpoint folder as the template."""
    root = tmp_path_factory.mktemp("trainer")
    images = write_images(root / "images")
    config = tiny_config(images, root / "data")
    trainer = Trainer(config, checkpoint_dir=root / "template", log_dir=root / "logs",
                      resume=False)
    trainer.fit(max_iters=1, progress=False)
    assert latest_step(root / "template") == 1
    return trainer, config, root / "template"


@pytest.fixture
def trainer(base, tmp_path):
    """The module's Trainer pointed at a fresh copy of the one-step checkpoint folder."""
    trainer, config, template = base
    folder = tmp_path / "ckpt"
    shutil.copytree(template, folder)
    trainer.config = config
    trainer.checkpoint_dir = folder  # a new CheckpointStore on that folder
    trainer.log_dir = tmp_path / "logs"
    trainer.resume = True
    return trainer


# --------------------------------------------------------------- --fresh
def test_fresh_removes_only_the_runs_checkpoints_and_only_when_training_starts(base, trainer,
                                                                              tmp_path):
    _, config, _ = base
    folder = trainer.checkpoint_dir  # holds ckpt-1 of the module's run
    (folder / "notes.txt").write_text("keep me")
    (folder / "other_run").mkdir()
    (folder / "other_run" / "weights.h5").write_bytes(b"precious")
    # Building a Trainer that will start fresh deletes nothing.
    Trainer(config, checkpoint_dir=folder, log_dir=tmp_path / "other_logs", resume=False)
    assert latest_step(folder) == 1
    trainer.resume = False
    trainer.fit(max_iters=1, progress=False)  # the model is past step 1: starting is all it does
    assert not list(folder.glob("ckpt-*")) and not (folder / "checkpoint").exists()
    assert (folder / "notes.txt").read_text() == "keep me"
    assert (folder / "other_run" / "weights.h5").read_bytes() == b"precious"
    assert trainer.resume  # later fits continue this run


# ---------------------------------------------------------------- NaN / Inf
def test_diverging_loss_stops_naming_loss_and_step_and_keeps_last_good_checkpoint(trainer):
    # A learning rate of 1e30 (taken from the config on resume, not from the
    # checkpoint) blows the weights up: the next step's losses are NaN/Inf.
    trainer.config = trainer.config.replace(LEARNING_RATE=1e30)
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(max_iters=8, progress=False)
    message = str(info.value)
    m = re.match(r"loss (\w+) became (nan|inf|-inf) at step (\d+);", message)
    assert m, message
    assert m.group(1) in D_TERMS + G_TERMS
    step = int(m.group(3))
    assert step >= 2
    # Every earlier step was checkpointed (TRAIN_SPE=1), the diverged one not.
    assert latest_step(trainer.checkpoint_dir) == step - 1
    assert f"last good: {trainer.checkpoint_dir / f'ckpt-{step - 1}'}" in message
    assert "LEARNING_RATE" in message
    assert f"ckpt-{step}" not in assert_finite_checkpoints(trainer.checkpoint_dir)


def test_nan_weights_with_finite_losses_are_never_saved(trainer, monkeypatch):
    real_step = trainer._compiled_step()

    def poisoned_step(data):  # the losses are finite; the update leaves a NaN weight
        out = real_step(data)
        kernel = trainer.model.generator.trainable_variables[0]
        kernel.assign(tf.fill(kernel.shape, float("nan")))
        return out

    monkeypatch.setattr(trainer, "_train_fn", poisoned_step)
    with pytest.raises(TrainingDiverged, match=r"variable \S+ became NaN/Inf at step 2;"):
        trainer.fit(max_iters=3, progress=False)
    assert latest_step(trainer.checkpoint_dir) == 1
    assert assert_finite_checkpoints(trainer.checkpoint_dir) == ["ckpt-1"]


# ------------------------------------------------------- disk full / unwritable
def test_disk_full_during_save_is_a_clear_error_and_keeps_previous_checkpoint(trainer,
                                                                              monkeypatch):
    def full_disk_save(checkpoint_number=None, **kwargs):
        # As a real ENOSPC would: part of the checkpoint is on disk, then the write fails.
        temp = trainer.checkpoint_dir / f"ckpt-{checkpoint_number}_temp"
        temp.mkdir()
        (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temp))

    monkeypatch.setattr(trainer.store.manager, "save", full_disk_save)
    with pytest.raises(CheckpointWriteError) as info:
        trainer.fit(max_iters=3, progress=False)
    message = str(info.value)
    assert f"for step 2 to {trainer.checkpoint_dir}" in message
    assert "[ENOSPC] No space left on device" in message
    assert f"previous checkpoint ({trainer.checkpoint_dir / 'ckpt-1'}) is intact" in message
    assert not list(trainer.checkpoint_dir.glob("*_temp"))  # the partial write is removed
    assert latest_step(trainer.checkpoint_dir) == 1
    assert assert_finite_checkpoints(trainer.checkpoint_dir) == ["ckpt-1"]


def test_real_write_failure_from_the_os_keeps_previous_checkpoint(trainer):
    """The kernel refuses the write (file size limit, EFBIG) inside TensorFlow's saver."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    # 8 MB: TensorBoard and the loss log fit, a 160 MB checkpoint does not.
    resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, old_limit[1]))
    try:
        with pytest.raises(CheckpointWriteError, match="File too large") as info:
            trainer.fit(max_iters=3, progress=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert "step 2" in str(info.value) and "is intact" in str(info.value)
    assert not [p for p in trainer.checkpoint_dir.iterdir() if "temp" in p.name]
    assert latest_step(trainer.checkpoint_dir) == 1
    assert assert_finite_checkpoints(trainer.checkpoint_dir) == ["ckpt-1"]
    # ... and training resumes from it once the disk has room again.
    trainer.fit(max_iters=2, progress=False)
    assert latest_step(trainer.checkpoint_dir) == 2


def test_unwritable_checkpoint_dir_fails_at_start_without_traceback(base, tmp_path, capsys):
    _, config, _ = base
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code = train_main(["--preset", "tiny", "--dataset", config.DATASET,
                       "--set", f"DATA_DIR={config.DATA_DIR}", "--set", "D_STEPS=1",
                       "--checkpoint_dir", str(blocker / "ckpt"),
                       "--log_dir", str(tmp_path / "logs"), "--no_progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: cannot write to the checkpoint folder {blocker / 'ckpt'}" in err
    assert "ENOTDIR" in err and "--checkpoint_dir" in err
    assert "Traceback" not in err


# ------------------------------------------------------ corrupt checkpoints
def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(trainer, caplog):
    assert trainer.restore() == 1
    good = {v.path: v.numpy() for v in trainer.model.generator.weights}
    trainer.model.g_optimizer.iterations.assign(2)
    trainer.save()
    _flip_bytes(trainer.checkpoint_dir / "ckpt-2.data-00000-of-00001")  # bit rot
    with caplog.at_level(logging.WARNING, logger="piigan_tf"):
        assert trainer.restore() == 1
    assert "cannot restore" in caplog.text and "ckpt-2" in caplog.text
    for v in trainer.model.generator.weights:
        np.testing.assert_array_equal(v.numpy(), good[v.path])
    # Every checkpoint unreadable: a clear error, not a silent fresh start.
    data = trainer.checkpoint_dir / "ckpt-1.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])  # truncated
    with pytest.raises(CheckpointReadError, match="none of the 2 checkpoints .* --fresh"):
        trainer.restore()


def test_missing_checkpoint_index_file_still_resumes(trainer, caplog):
    (trainer.checkpoint_dir / "checkpoint").unlink()
    trainer.checkpoint_dir = trainer.checkpoint_dir  # a store that reads the folder anew
    with caplog.at_level(logging.WARNING, logger="piigan_tf"):
        assert trainer.restore() == 1
    assert "no 'checkpoint' index file" in caplog.text


def test_resuming_a_run_of_another_dataset_warns_and_names_the_fix(trainer, caplog):
    # Two folders named ``train`` share checkpoints/train: resuming the other's
    # run is allowed (fine-tuning) but said out loud.
    same = trainer.config
    with caplog.at_level(logging.WARNING, logger="piigan_tf"):
        trainer.state.check_config_compatible()
    assert "resumed on" not in caplog.text
    trainer.config = same.replace(DATASET="/elsewhere/train")
    with caplog.at_level(logging.WARNING, logger="piigan_tf"):
        trainer.state.check_config_compatible()
    assert "resumed on '/elsewhere/train'" in caplog.text and "--checkpoint_dir" in caplog.text


# ----------------------------------------------------------------- Ctrl-C
def test_ctrl_c_saves_the_exact_state_at_the_step_it_stops(trainer):
    # No interval save would happen before step 100: the checkpoint must come
    # from the interrupt handling.
    trainer.config = trainer.config.replace(TRAIN_SPE=100)

    def press_ctrl_c():  # once fit() has installed its handler, as a user would
        deadline = time.monotonic() + 120
        while signal.getsignal(signal.SIGINT) != trainer._on_signal:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=press_ctrl_c, daemon=True)
    thread.start()
    trainer.fit(max_iters=50, progress=False)
    thread.join()
    assert trainer.stopped_by == "SIGINT"
    stopped = trainer.step
    assert 2 <= stopped < 50
    assert latest_step(trainer.checkpoint_dir) == stopped
    # The checkpoint holds every variable: scramble them all, restore, compare.
    state = [v.numpy() for v in all_variables(trainer)]
    for v in all_variables(trainer):
        v.assign(tf.zeros(v.shape, v.dtype))
    assert trainer.restore() == stopped
    for v, expected in zip(all_variables(trainer), state):
        np.testing.assert_array_equal(v.numpy(), expected, err_msg=v.path)


# ----------------------------------------------------------------- loss log
def test_loss_log_survives_a_kill_mid_line_and_resume(tmp_path):
    path = tmp_path / "losses.jsonl"
    log = StepLog(path, 0)
    for step in range(1, 6):
        log.write(step, {"g_loss": step / 3})
    log.close()
    with open(path, "a") as handle:
        handle.write('{"step": 6, "g_lo')  # a kill in the middle of a line
    log = StepLog(path, 3)  # resumed from checkpoint 3: steps 4-6 are redone
    log.write(4, {"g_loss": 4.5})
    log.close()
    assert read_loss_log(path) == [{"step": 1, "g_loss": 1 / 3}, {"step": 2, "g_loss": 2 / 3},
                                   {"step": 3, "g_loss": 1.0}, {"step": 4, "g_loss": 4.5}]
    StepLog(path, 0).close()  # a fresh run starts an empty log
    assert read_loss_log(path) == []


# ---------------------------------------------------------------- bad data
@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Every kind of file a real image folder holds; name -> (path, usable?)."""
    root = tmp_path_factory.mktemp("zoo")
    rgb = texture(48, 56, seed=1)
    files = {}

    def add(name, usable, writer):
        path = root / name
        writer(path)
        files[name] = (str(path), usable)

    add("rgb.png", True, lambda p: cv2.imwrite(str(p), rgb))
    add("gray.png", True, lambda p: cv2.imwrite(str(p), rgb[:, :, 0]))
    add("rgba.png", True, lambda p: cv2.imwrite(str(p), np.dstack([rgb, rgb[:, :, :1]])))
    add("palette.png", True, lambda p: Image.fromarray(rgb).convert("P").save(p))
    add("deep16.png", True, lambda p: cv2.imwrite(str(p), rgb.astype(np.uint16) * 257))
    add("one_pixel.png", True, lambda p: cv2.imwrite(str(p), rgb[:1, :1]))
    add("photo.jpg", True, lambda p: cv2.imwrite(str(p), rgb))
    add("gray.jpg", True, lambda p: cv2.imwrite(str(p), rgb[:, :, 0]))
    add("png_named.jpg", True, lambda p: p.write_bytes(cv2.imencode(".png", rgb)[1].tobytes()))
    add("jpeg_named.png", True, lambda p: p.write_bytes(cv2.imencode(".jpg", rgb)[1].tobytes()))
    add("image.bmp", True, lambda p: cv2.imwrite(str(p), rgb))
    add("anim.gif", True, lambda p: Image.fromarray(rgb).save(p))
    huge = np.zeros((10000, 10000, 3), np.uint8)
    huge[::50] = 200
    add("huge.png", True, lambda p: cv2.imwrite(str(p), huge, [cv2.IMWRITE_PNG_COMPRESSION, 1]))
    add("huge.jpg", True, lambda p: cv2.imwrite(str(p), huge))
    jpeg = cv2.imencode(".jpg", texture(64, 64, seed=2))[1].tobytes()
    png = cv2.imencode(".png", texture(64, 64, seed=2))[1].tobytes()
    # Skipped at decode time (valid header, broken body).
    add("truncated.jpg", False, lambda p: p.write_bytes(jpeg[:len(jpeg) // 2]))
    add("truncated.png", False, lambda p: p.write_bytes(png[:len(png) // 2]))
    add("garbage_body.png", False, lambda p: p.write_bytes(png[:16] + os.urandom(len(png))))
    # Skipped by the pre-scan.
    add("empty.png", False, lambda p: p.write_bytes(b""))
    add("notes.png", False, lambda p: p.write_text("not an image\n"))
    add("random.jpg", False, lambda p: p.write_bytes(b"\0" + os.urandom(3000)))
    add("image.tiff", False, lambda p: cv2.imwrite(str(p), rgb))
    return files


def test_bad_files_are_converted_or_skipped_with_counts_in_the_log(zoo, caplog, capfd):
    paths = [path for path, _ in zoo.values()]
    usable = sum(ok for _, ok in zoo.values())
    with caplog.at_level(logging.WARNING, logger="piigan_tf"):
        dataset = pipeline.build_dataset(paths, (32, 32, 3), 4, box_shape=(16, 16),
                                         repeat=False, drop_remainder=False, seed=1)
    assert f"skipping 4 of {len(paths)} image files" in caplog.text  # pre-scan
    images = np.concatenate([batch["images"].numpy() for batch in dataset])
    assert images.shape == (usable, 32, 32, 3)
    assert np.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    err = capfd.readouterr().err
    decode_failures = len(paths) - 4 - usable
    assert f"skipped {decode_failures} of {len(paths) - 4} image files that failed to decode" \
        in err


def test_bad_files_in_an_endless_training_stream_are_skipped(zoo):
    paths = [path for name, (path, _) in zoo.items() if "huge" not in name]  # for speed
    dataset = pipeline.build_dataset(paths, (32, 32, 3), 2, box_shape=(16, 16), group=2,
                                     seed=1, start_batch=7)
    for element, _ in zip(dataset, range(12)):  # more than two epochs, resumed mid-epoch
        assert element["images"].shape == (2, 2, 32, 32, 3)


def test_dataset_whose_files_all_fail_to_decode_is_an_error_not_a_hang(zoo):
    broken = [zoo[name][0] for name in ("truncated.jpg", "truncated.png", "garbage_body.png")]
    dataset = pipeline.build_dataset(broken, (32, 32, 3), 2, box_shape=(16, 16), group=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="no image file could be decoded"):
        next(iter(dataset))


@pytest.mark.parametrize("kind, code, message", [
    ("corrupt", 1, "no image file could be decoded"),
    ("not_images", 2, "no usable image file"),
])
def test_train_py_on_an_all_bad_dataset_exits_with_a_message(zoo, tmp_path, capsys, kind,
                                                            code, message):
    names = {"corrupt": ("truncated.jpg", "truncated.png", "garbage_body.png"),
             "not_images": ("empty.png", "notes.png", "random.jpg")}[kind]
    folder = tmp_path / kind
    folder.mkdir()
    for i in range(4):  # enough files for a train/val split
        for name in names:
            shutil.copy(zoo[name][0], folder / f"{i}_{name}")
    start = time.monotonic()
    result = train_main(["--preset", "tiny", "--dataset", str(folder),
                         "--set", f"DATA_DIR={tmp_path / 'data'}", "--set", "D_STEPS=1",
                         "--checkpoint_dir", str(tmp_path / "ckpt"),
                         "--log_dir", str(tmp_path / "logs"), "--no_progress"])
    err = capsys.readouterr().err
    assert result == code, err
    assert message in err and "Traceback" not in err
    assert time.monotonic() - start < 120
    assert not list((tmp_path / "ckpt").glob("ckpt-*"))
