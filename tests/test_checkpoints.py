"""CheckpointStore: save, latest, restore with fallback, debris cleanup, starting fresh.

A store over two small variables stands in for the model: what is tested is
the folder's life cycle and TensorFlow's file naming, which the Trainer
relies on (its own tests are in test_reliability.py and test_reliability_kill.py).
"""

import errno
import os

import numpy as np
import pytest
import tensorflow as tf

from piigan_tf.checkpoints import (CKPT_FILE, CheckpointReadError, CheckpointStore,
                                   CheckpointWriteError, checkpoint_number, error_text)


def make_store(folder, max_to_keep=3):
    weights = tf.Variable(np.zeros(4, np.float32))
    step = tf.Variable(0, dtype=tf.int64)
    return CheckpointStore(folder, max_to_keep=max_to_keep, weights=weights, step=step), \
        weights, step


def save_steps(store, weights, step, numbers):
    for n in numbers:
        weights.assign(np.full(4, n, np.float32))
        step.assign(n)
        store.save(n)


def test_save_and_restore_the_latest(tmp_path):
    store, weights, step = make_store(tmp_path / "run")
    assert store.latest is None and store.restore() is None  # nothing yet: no error
    save_steps(store, weights, step, [1, 2, 3, 4])
    assert checkpoint_number(store.latest) == 4
    # max_to_keep=3: the oldest went.
    assert sorted(n for n, kind, _ in store.files() if kind == ".index") == [2, 3, 4]
    weights.assign(np.zeros(4, np.float32))
    fresh, w2, s2 = make_store(tmp_path / "run")  # a new process
    assert checkpoint_number(fresh.restore()) == 4
    np.testing.assert_array_equal(w2.numpy(), np.full(4, 4.0))
    assert int(s2.numpy()) == 4


def test_restore_falls_back_past_a_corrupt_checkpoint(tmp_path):
    store, weights, step = make_store(tmp_path / "run")
    save_steps(store, weights, step, [1, 2])
    data = next(p for n, kind, p in store.files() if n == 2 and kind.startswith(".data"))
    data.write_bytes(b"\0" * 7)  # truncated
    fresh, w2, _ = make_store(tmp_path / "run")
    assert checkpoint_number(fresh.restore()) == 1
    np.testing.assert_array_equal(w2.numpy(), np.full(4, 1.0))


def test_restore_check_rejects_a_checkpoint(tmp_path):
    store, weights, step = make_store(tmp_path / "run")
    save_steps(store, weights, step, [1, 2])

    def no_twos():
        if weights.numpy()[0] == 2:
            raise ValueError("variable weights is NaN/Inf")

    assert checkpoint_number(store.restore(check=no_twos)) == 1


def test_no_readable_checkpoint_is_one_error_naming_each(tmp_path):
    store, weights, step = make_store(tmp_path / "run")
    save_steps(store, weights, step, [1, 2])
    for _, kind, path in store.files():
        if kind.startswith(".data"):
            path.write_bytes(b"")
    with pytest.raises(CheckpointReadError) as info:
        make_store(tmp_path / "run")[0].restore()
    message = str(info.value)
    assert "none of the 2 checkpoints" in message and "ckpt-1" in message and "ckpt-2" in message
    assert "--fresh" in message


def test_debris_of_interrupted_saves_is_removed(tmp_path):
    folder = tmp_path / "run"
    store, weights, step = make_store(folder)
    save_steps(store, weights, step, [2])
    # What a kill leaves: a temp folder, a half-renamed file, and files of a
    # checkpoint newer than the one the index file names.
    (folder / "ckpt-4_temp").mkdir()
    (folder / "ckpt-4_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    (folder / "ckpt-4.index.tempstate123").write_bytes(b"x")
    (folder / "ckpt-4.data-00000-of-00001").write_bytes(b"x")
    (folder / "notes.txt").write_text("mine")
    removed = {p.name for p in make_store(folder)[0].remove_debris()}
    assert removed == {"ckpt-4_temp", "ckpt-4.index.tempstate123", "ckpt-4.data-00000-of-00001"}
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index", "notes.txt"]


def test_without_index_file_the_complete_checkpoints_are_tried(tmp_path, caplog):
    folder = tmp_path / "run"
    store, weights, step = make_store(folder)
    save_steps(store, weights, step, [1, 2])
    (folder / "checkpoint").unlink()
    fresh, w2, _ = make_store(folder)
    assert fresh.candidates() == [str(folder / "ckpt-2"), str(folder / "ckpt-1")]
    assert checkpoint_number(fresh.restore()) == 2
    assert "no 'checkpoint' index file" in caplog.text


def test_starting_fresh_removes_only_the_runs_checkpoint_files(tmp_path):
    """`--checkpoint_dir ~/models --fresh` must not destroy what else is in ~/models."""
    folder = tmp_path / "models"
    (folder / "other_run").mkdir(parents=True)
    (folder / "other_run" / "weights.h5").write_bytes(b"precious")
    (folder / "notes.txt").write_text("keep me")
    (folder / "config.yml").write_text("DATASET: x\n")
    store, weights, step = make_store(folder)
    save_steps(store, weights, step, [1, 2])
    (folder / "ckpt-3_temp").mkdir()
    removed = store.clear()
    assert {p.name for p in removed} == {
        "checkpoint", "ckpt-1.index", "ckpt-1.data-00000-of-00001", "ckpt-2.index",
        "ckpt-2.data-00000-of-00001", "ckpt-3_temp"}
    assert sorted(p.name for p in folder.iterdir()) == ["config.yml", "notes.txt", "other_run"]
    assert (folder / "other_run" / "weights.h5").read_bytes() == b"precious"
    assert store.latest is None and store.restore() is None
    save_steps(store, weights, step, [1])  # the store works on after starting fresh
    assert checkpoint_number(store.latest) == 1


def test_write_failure_is_one_error_and_the_previous_checkpoint_stays(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    store, weights, step = make_store(folder)
    save_steps(store, weights, step, [1])

    def full_disk(checkpoint_number=None):
        temp = folder / f"ckpt-{checkpoint_number}_temp"
        temp.mkdir()
        (temp / "part").write_bytes(b"\0" * 1024)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temp))

    monkeypatch.setattr(store.manager, "save", full_disk)
    with pytest.raises(CheckpointWriteError) as info:
        store.save(2)
    message = str(info.value)
    assert "\n" not in message and "[ENOSPC]" in message and "step 2" in message
    assert str(folder / "ckpt-1") in message
    assert not (folder / "ckpt-2_temp").exists()  # the partial write's space is freed
    assert checkpoint_number(make_store(folder)[0].latest) == 1


def test_prepare_runs_before_the_save_and_its_error_is_a_write_error(tmp_path):
    folder = tmp_path / "run"
    store, weights, step = make_store(folder)
    calls = []
    store.save(1, prepare=lambda: calls.append("config"))
    assert calls == ["config"]

    def unwritable():
        raise PermissionError(errno.EACCES, "Permission denied", str(folder / "config.yml"))

    with pytest.raises(CheckpointWriteError, match=r"\[EACCES\]"):
        store.save(2, prepare=unwritable)
    assert checkpoint_number(store.latest) == 1


def test_passthrough_errors_are_not_write_errors(tmp_path, monkeypatch):
    store, _, _ = make_store(tmp_path / "run")

    def peer_gone(checkpoint_number=None):
        raise tf.errors.UnavailableError(None, None, "peer gone")

    monkeypatch.setattr(store.manager, "save", peer_gone)
    with pytest.raises(tf.errors.UnavailableError):
        store.save(1, passthrough=(tf.errors.UnavailableError,))
    with pytest.raises(CheckpointWriteError, match="peer gone"):
        store.save(1)


def test_file_naming_and_error_text():
    assert CKPT_FILE.fullmatch("ckpt-12.index").groups() == ("12", ".index")
    assert CKPT_FILE.fullmatch("ckpt-12.data-00000-of-00001").group(1) == "12"
    assert CKPT_FILE.fullmatch("ckpt-3_temp").group(2) == "_temp"
    assert CKPT_FILE.fullmatch("ckpt-3.index.tempstate8812") is not None
    assert CKPT_FILE.fullmatch("checkpoint") is None and CKPT_FILE.fullmatch("ckpt.txt") is None
    assert checkpoint_number("/a/b/ckpt-250") == 250
    assert error_text(OSError(errno.ENOSPC, "No space left on device", "/x")) == \
        "[ENOSPC] No space left on device: /x"
