"""Shipped model folders (generator.npz + config.yml) and the shipped face model.

A model folder loads wherever a training checkpoint folder does; the shipped
``pretrained/celeba64`` must reproduce the known output stored beside it.
"""

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf import loading, pretrained  # noqa: E402
from piigan_tf.cli import pretrained as make_model  # noqa: E402
from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.inference import Inpainter, center_box_mask, example_images  # noqa: E402
from piigan_tf.model import PiiGAN  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "pretrained" / "celeba64"


def run_script(name, argv):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"piigan_{name}_cli", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny (32x32) training checkpoint with non-initial weights and its model folder."""
    root = tmp_path_factory.mktemp("pretrained")
    config = load_config(preset="tiny")
    model = PiiGAN.from_config_object(config)
    model.build()
    rng = np.random.default_rng(0)
    for v in model.generator.weights:
        v.assign(v.numpy() + 0.01 * rng.standard_normal(v.shape).astype(np.float32))
    checkpoint = root / "ckpt"
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(checkpoint), 1).save(5)
    config.dump(checkpoint / "config.yml")
    out = root / "model"
    pretrained.make_model_folder(checkpoint, out)
    return checkpoint, out


def test_model_folder_is_small_and_samples_like_the_checkpoint(folders):
    checkpoint, folder = folders
    assert sorted(p.name for p in folder.iterdir()) == ["PROVENANCE.md", "check.json", "config.yml",
                                                        "generator.npz"]
    with np.load(folder / "generator.npz") as archive:
        assert {archive[k].dtype for k in archive.files} == {np.dtype("float16")}
        assert "inpaint_net/conv1/kernel" in archive.files
    from_checkpoint, from_folder = Inpainter.from_checkpoint(checkpoint), Inpainter.from_checkpoint(folder)
    # Sizes come from the folder's config (32x32), not from setting.yml (128x128).
    assert from_folder.config.img_hw == (32, 32) and from_folder.source.endswith("generator.npz")
    image = (np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3))).astype(np.uint8)
    mask = center_box_mask((32, 32), (16, 16))[None]
    a = from_checkpoint.sample(image, mask, 3, seed=4).astype(int)
    b = from_folder.sample(image, mask, 3, seed=4).astype(int)
    assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.1  # float16 storage
    assert np.abs(a - from_folder.sample(image, mask, 3, seed=5)).mean() > 1  # the seed matters


def test_check_file_holds_the_known_output(folders):
    _, folder = folders
    stored = json.loads((folder / "check.json").read_text())
    assert stored["image"] == example_images(load_config(preset="tiny"), 1)[0][0]
    now = pretrained.output_statistics(Inpainter.from_checkpoint(folder))
    np.testing.assert_allclose(now["mean"], stored["mean"], atol=0.5)
    np.testing.assert_allclose(now["std"], stored["std"], atol=0.5)


def test_missing_or_truncated_weights_give_one_line_naming_the_file(folders, tmp_path, capsys):
    _, folder = folders
    broken = tmp_path / "model"
    shutil.copytree(folder, broken)
    data = (broken / "generator.npz").read_bytes()
    (broken / "generator.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(loading.PretrainedModelError, match="generator.npz is truncated or corrupt"):
        Inpainter.from_checkpoint(broken)
    assert run_script("test", ["--checkpoint_dir", str(broken), "--num_samples", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "generator.npz is truncated" in err and "\n" not in err
    (broken / "generator.npz").unlink()
    with pytest.raises(loading.PretrainedModelError, match=r"generator.npz is missing"):
        Inpainter.from_checkpoint(broken)
    shutil.copy(folder / "generator.npz", broken)
    (broken / "config.yml").unlink()
    with pytest.raises(loading.PretrainedModelError, match=r"config.yml is missing"):
        Inpainter.from_checkpoint(broken)


def test_weights_of_another_size_are_refused(folders, tmp_path):
    _, folder = folders
    other = tmp_path / "model"
    shutil.copytree(folder, other)
    with np.load(folder / "generator.npz") as archive:
        arrays = dict(archive)
    arrays["inpaint_net/conv1/kernel"] = arrays["inpaint_net/conv1/kernel"][..., :8]
    np.savez(other / "generator.npz", **arrays)
    with pytest.raises(loading.PretrainedModelError, match=r"conv1/kernel is \[5, 5, 6, 8\], the network's \[5, 5, 6, 32\]"):
        Inpainter.from_checkpoint(other)


def test_default_model_is_the_newest_checkpoint_else_the_shipped_one(folders, tmp_path, monkeypatch):
    from piigan_tf.loading import default_model_dir

    checkpoint, folder = folders
    monkeypatch.setattr(loading, "PRETRAINED_DIR", folder)
    assert default_model_dir(tmp_path / "no_checkpoints") == folder
    root = tmp_path / "checkpoints"
    shutil.copytree(checkpoint, root / "run")
    assert default_model_dir(root) == root / "run"
    monkeypatch.setattr(loading, "PRETRAINED_DIR", tmp_path / "absent")
    assert default_model_dir(tmp_path / "no_checkpoints") is None


def test_cli_errors_and_update_check(folders, tmp_path, capsys):
    assert make_model.main(["--checkpoint_dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "no trained checkpoint found" in capsys.readouterr().err
    _, folder = folders
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    (copy / "check.json").write_text("{}")
    assert make_model.main(["--update_check", str(copy)]) == 0
    assert (copy / "check.json").read_text() == (folder / "check.json").read_text()


# ------------------------------------------------------------ the shipped model
def test_shipped_model_is_small_documented_and_reproduces_its_known_output():
    assert (SHIPPED / "generator.npz").stat().st_size < 10 * 1024**2
    provenance = (SHIPPED / "PROVENANCE.md").read_text()
    assert "research use only" in provenance
    inpainter = Inpainter.from_checkpoint(SHIPPED)
    assert inpainter.config.img_hw == (64, 64) and inpainter.config.box_hw == (32, 32)
    stored = json.loads((SHIPPED / "check.json").read_text())
    now = pretrained.output_statistics(inpainter)
    assert now["image"] == stored["image"] == "astronaut_face"
    np.testing.assert_allclose(now["mean"], stored["mean"], atol=0.5)
    np.testing.assert_allclose(now["std"], stored["std"], atol=0.5)


def test_shipped_model_through_test_evaluate_and_export(tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert run_script("test", ["--checkpoint_dir", str(SHIPPED), "--num_samples", "3", "--seed", "1",
                               "--output", str(grid)]) == 0
    assert "from " + str(SHIPPED / "generator.npz") in capsys.readouterr().out
    assert cv2.imread(str(grid)).shape == (64, 5 * 64 + 4 * 2, 3)  # original | masked | 3 samples
    assert run_script("test", ["--checkpoint_dir", str(SHIPPED), "--num_samples", "3", "--seed", "1",
                               "--zoom", "2", "--output", str(tmp_path / "big.png")]) == 0
    small, big = cv2.imread(str(grid)), cv2.imread(str(tmp_path / "big.png"))
    assert big.shape == (128, 5 * 128 + 4 * 2, 3)
    np.testing.assert_array_equal(big[::2, 130:258:2], small[:, 66:130])  # the masked cell, enlarged

    faces = tmp_path / "faces"
    faces.mkdir()
    name, face = example_images(load_config(preset="celeba64"), 1)[0]
    cv2.imwrite(str(faces / f"{name}.png"), face[:, :, ::-1])
    assert run_script("evaluate", ["--checkpoint_dir", str(SHIPPED), "--data", str(faces),
                                   "--num_samples", "2", "--no_perceptual", "--no_progress",
                                   "--output_dir", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["settings"]["crop"] == "resize" and metrics["settings"]["image_size"] == [64, 64]

    from piigan_tf.export import export_saved_model

    exported = export_saved_model(tmp_path / "export", SHIPPED)
    stored = json.loads((SHIPPED / "check.json").read_text())
    served = pretrained.output_statistics(Inpainter.from_saved_model(exported))
    np.testing.assert_allclose(served["mean"], stored["mean"], atol=0.5)


# ------------------------------------------------------- every shipped model
# (in_training/: model folders committed while they train, held to the same checks)
SHIPPED_FOLDERS = (loading.shipped_model_dirs(ROOT / "pretrained")
                   + loading.shipped_model_dirs(ROOT / "in_training"))


@pytest.mark.parametrize("folder", SHIPPED_FOLDERS, ids=[f.name for f in SHIPPED_FOLDERS])
def test_every_shipped_model_is_complete_and_reproduces_its_known_output(folder):
    """Small weights, provenance, config, curve and a known output that holds on every CPU."""
    from piigan_tf.run_logs import read_eval_log

    assert (folder / "generator.npz").stat().st_size < 10 * 1024**2
    for name in ("config.yml", "PROVENANCE.md", "check.json", "eval.csv", "learning_curve.png"):
        assert (folder / name).is_file(), name
    assert len(read_eval_log(folder / "eval.csv")) >= 2
    inpainter = Inpainter.from_checkpoint(folder)
    stored = json.loads((folder / "check.json").read_text())
    now = pretrained.output_statistics(inpainter)
    assert now["image"] == stored["image"] and now["hole_box"] == stored["hole_box"]
    np.testing.assert_allclose(now["mean"], stored["mean"], atol=0.5)
    np.testing.assert_allclose(now["std"], stored["std"], atol=0.5)


@pytest.mark.parametrize("folder", SHIPPED_FOLDERS, ids=[f.name for f in SHIPPED_FOLDERS])
def test_every_shipped_model_missing_its_weights_is_one_line_naming_them(folder, tmp_path, capsys):
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    (copy / "generator.npz").unlink()
    assert run_script("test", ["--checkpoint_dir", str(copy), "--num_samples", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert str(copy / "generator.npz") in err and "is missing" in err
