"""Evaluation runs (piigan_tf.evaluation) and the evaluate.py CLI, at 32x32.

The model has random weights: these tests check the plumbing (masks,
baselines, scoring, report files), not image quality.
"""

import dataclasses
import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf import evaluation as E  # noqa: E402
from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.model import PiiGAN  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HW = (32, 32)


def smooth_image(seed, hw=(40, 44)):
    """A smooth colour image (gradients plus a blob): easy for the baselines."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:hw[0], 0:hw[1]] / max(hw)
    channels = [rng.uniform(40, 200) + rng.uniform(-50, 50) * x + rng.uniform(-50, 50) * y
                + 30 * np.exp(-((x - rng.uniform(0.3, 0.7)) ** 2 + (y - 0.5) ** 2) * 20)
                for _ in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def tiny_model(seed=0):
    config = load_config(preset="tiny")
    model = PiiGAN.from_config_object(config)
    model.build()
    # Random but not the initial weights, so the checkpoint loader can tell
    # restored weights from a fresh initialisation.
    rng = np.random.default_rng(seed)
    for v in model.generator.weights:
        v.assign(v.numpy() + 0.01 * rng.standard_normal(v.shape).astype(np.float32))
    return model, config


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for i in range(5):
        cv2.imwrite(str(folder / f"img{i}.png"), smooth_image(i)[:, :, ::-1])
    return folder


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    model, config = tiny_model()
    directory = tmp_path_factory.mktemp("checkpoints") / "tiny"
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(directory), 1)
    manager.save(checkpoint_number=7)
    config.dump(directory / "config.yml")
    return directory


@pytest.fixture(scope="module")
def inpainter():
    from piigan_tf.inference import Inpainter

    model, config = tiny_model()
    return Inpainter.from_generator(model.generator, config=config, source="memory/ckpt-3")


@pytest.fixture(scope="module")
def result(inpainter, image_dir):
    # Random-initialised VGG16/InceptionV3 exercise the LPIPS/FID path offline.
    networks = (E.M.LPIPSDistance(weights=None), E.M.InceptionFeatures(weights=None, image_size=75))
    return E.evaluate_files(inpainter, image_dir, num_samples=3, max_images=4, seed=1,
                            mask_type="box", batch_size=3, networks=networks,
                            num_examples=2, progress=False)


# ------------------------------------------------------------- baselines
#: The baselines this OpenCV build runs (FSR needs contrib OpenCV).
BASELINES_HERE = E.available_baselines()[0]
needs_contrib = pytest.mark.skipif(
    not E.baseline_available("fsr"),
    reason="FSR needs OpenCV's contrib module cv2.xphoto (opencv-contrib-python-headless)")


@pytest.mark.parametrize("method", [pytest.param(m, marks=needs_contrib) if m == "fsr" else m
                                    for m in E.BASELINES])
def test_baselines_fill_only_the_hole_and_plausibly(method):
    images = np.stack([smooth_image(i, HW) for i in range(2)])
    masks = E.make_eval_masks(2, HW, (16, 16), "center")
    out = E.inpaint_opencv(images, masks, method)
    assert out.shape == images.shape and out.dtype == np.uint8
    known = masks[..., 0] == 0
    np.testing.assert_array_equal(out[known], images[known])
    from piigan_tf.metrics import psnr

    hole_psnr = psnr(images, out, masks)
    assert np.all(hole_psnr > 20), hole_psnr  # smooth images: diffusion fills them well


@needs_contrib
def test_fsr_continues_a_texture_better_than_diffusion():
    """FSR reconstructs from frequencies: on a periodic texture it beats Telea by far."""
    yy, xx = np.mgrid[0:48, 0:48]
    stripes = (127 + 100 * np.sin(xx * 2 * np.pi / 6) * np.cos(yy * 2 * np.pi / 9)).astype(np.uint8)
    images = np.repeat(stripes[None, ..., None], 3, axis=-1)
    masks = np.zeros((1, 48, 48, 1), np.uint8)
    masks[:, 18:30, 18:30] = 1
    from piigan_tf.metrics import psnr

    fsr = psnr(images, E.inpaint_opencv(images, masks, "fsr"), masks)[0]
    telea = psnr(images, E.inpaint_opencv(images, masks, "telea"), masks)[0]
    assert fsr > telea + 5, (fsr, telea)


def test_fsr_absent_is_left_out_with_a_note(monkeypatch):
    monkeypatch.setattr(E, "baseline_available", lambda method: method != "fsr")
    assert E.available_baselines() == (["telea", "navier_stokes"], [E.FSR_MISSING])
    images = np.stack([smooth_image(i, HW) for i in range(2)])
    masks = E.make_eval_masks(2, HW, (16, 16), "center")
    result = E.evaluate(None, images, masks, perceptual=False, progress=False)
    assert result.methods == ["telea", "navier_stokes"]
    assert E.FSR_MISSING in result.notes and "opencv-contrib-python-headless" in E.FSR_MISSING
    with pytest.raises(RuntimeError, match="opencv-contrib-python-headless"):
        E.inpaint_opencv(images, masks, "fsr")


def test_unknown_baseline_is_rejected():
    with pytest.raises(ValueError, match="telea"):
        E.inpaint_opencv(np.zeros((1, 8, 8, 3), np.uint8), np.ones((1, 8, 8, 1)), "patchmatch")


# ------------------------------------------------------------------ masks
def test_masks_center_random_reproducible_and_from_files(tmp_path):
    center = E.make_eval_masks(3, (32, 40), (16, 16), "center")
    assert center.shape == (3, 32, 40, 1) and center.dtype == np.uint8
    assert center[0, 8:24, 12:28].all() and center[0].sum() == 256
    for mask_type in ("box", "random_box", "free_form"):
        a = E.make_eval_masks(5, HW, (16, 16), mask_type, seed=4)
        b = E.make_eval_masks(3, HW, (16, 16), mask_type, seed=4)
        np.testing.assert_array_equal(a[:3], b)  # mask i does not depend on the count
        assert set(np.unique(a)) <= {0, 1} and all(m.any() for m in a)
    assert not np.array_equal(E.make_eval_masks(2, HW, (16, 16), "free_form", seed=4),
                              E.make_eval_masks(2, HW, (16, 16), "free_form", seed=5))
    for i in range(2):
        m = np.zeros((64, 64), np.uint8)
        m[i * 32:(i + 1) * 32] = 255
        cv2.imwrite(str(tmp_path / f"m{i}.png"), m)
    files = E.mask_files_in(tmp_path)
    masks = E.make_eval_masks(3, HW, (16, 16), mask_files=files)
    assert masks[0, :16].all() and not masks[0, 16:].any()
    np.testing.assert_array_equal(masks[2], masks[0])  # used in turn
    with pytest.raises(ValueError, match="mask_type"):
        E.make_eval_masks(1, HW, (16, 16), "circle")


def test_load_eval_images_crops_and_skips_bad_files(image_dir, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    files = [str(tmp_path / "bad.png")] + E.list_eval_files(image_dir)
    names, images = E.load_eval_images(files, HW, max_images=3)
    assert names == ["img0", "img1", "img2"] and images.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(images[0], smooth_image(0)[4:36, 6:38])  # the centre window
    _, random = E.load_eval_images(files, HW, crop="random", seed=2, max_images=2)
    _, again = E.load_eval_images(files, HW, crop="random", seed=2, max_images=2)
    np.testing.assert_array_equal(random, again)
    with pytest.raises(FileNotFoundError, match="no such file list or image folder"):
        E.list_eval_files(tmp_path / "nowhere")


def test_load_eval_images_grid_takes_several_windows_of_each_image(image_dir):
    files = E.list_eval_files(image_dir)
    names, images = E.load_eval_images(files, HW, crop="grid", max_images=2)
    # 40 x 44 images, 32 x 32 windows: corners at rows 0, 8 and columns 0, 12.
    assert names == [f"img{i}_y{y}_x{x}" for i in (0, 1) for y in (0, 8) for x in (0, 12)]
    assert images.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(images[3], smooth_image(0)[8:40, 12:44])
    np.testing.assert_array_equal(images[4], smooth_image(1)[:32, :32])
    names, _ = E.load_eval_images(files, HW, crop="grid", windows_per_side=1, max_images=5)
    assert names == [f"img{i}_y4_x6" for i in range(5)]  # the centre windows
    with pytest.raises(ValueError, match="crop must be one of"):
        E.load_eval_images(files, HW, crop="tiles")


# ---------------------------------------------------------------- scoring
def test_perfect_completions_score_as_identical():
    truth = smooth_image(3, HW)
    mask = E.make_eval_masks(1, HW, (16, 16), "center")[0]
    scores = E.score_completions(truth, np.stack([truth] * 3), mask)
    assert scores["psnr"] == scores["psnr_hole"] == scores["best_psnr"] == E.PSNR_CAP_DB
    assert scores["ssim"] == pytest.approx(1.0) and scores["ssim_hole"] == pytest.approx(1.0)
    assert scores["l1_hole"] == 0.0 and scores["diversity_l1"] == 0.0


def test_evaluate_scores_every_method(result):
    assert result.methods == ["piigan", *BASELINES_HERE]
    assert len(result.per_image) == 4 * (1 + len(BASELINES_HERE))
    assert result.settings["step"] == 3 and result.settings["num_samples"] == 3
    for method in result.methods:
        means = result.means[method]
        for key in ("psnr", "ssim", "psnr_hole", "ssim_hole", "l1_hole", "colour_offset_hole",
                    "tv_hole", "best_psnr",
                    "best_ssim", "diversity_l1", "lpips", "lpips_diversity", "fid",
                    "texture_ratio", "swd", "seam"):
            assert np.isfinite(means[key]), (method, key)
        inside = [r["tv_inside"] for r in result.per_image if r["method"] == method]
        assert means["texture_ratio"] == pytest.approx(np.mean(inside) / result.truth_tv_inside)
        assert means["swd"] > 0
        rows = [r for r in result.per_image if r["method"] == method]  # seam: a ratio of means
        assert means["seam"] == pytest.approx(np.mean([r["seam_across"] for r in rows])
                                              / np.mean([r["seam_beside"] for r in rows]))
        assert means["best_psnr"] >= means["psnr"] - 1e-9
    assert result.swd_noise_floor > 0 and result.settings["swd"]["noise_floor"] == result.swd_noise_floor
    assert 0 < result.truth_seam < 5
    for baseline in BASELINES_HERE:  # one completion each: no diversity, best-of-1 = the value
        assert result.means[baseline]["diversity_l1"] == 0.0
        assert result.means[baseline]["lpips_diversity"] == 0.0
        assert result.means[baseline]["best_psnr"] == pytest.approx(result.means[baseline]["psnr"])
    assert result.means["piigan"]["diversity_l1"] > 0  # random weights still vary with z
    completions = result.examples["completions"]
    assert completions["piigan"].shape == (2, 3, 32, 32, 3)
    assert completions["telea"].shape == (2, 1, 32, 32, 3)


def test_evaluate_is_reproducible_and_independent_of_batch_size(inpainter, image_dir):
    kwargs = dict(num_samples=2, max_images=3, seed=5, mask_type="free_form",
                  perceptual=False, progress=False)
    a = E.evaluate_files(inpainter, image_dir, batch_size=1, **kwargs)
    b = E.evaluate_files(inpainter, image_dir, batch_size=3, **kwargs)
    # The noise rule of Inpainter.sample, image i at index i of the request.
    examples = a.examples
    np.testing.assert_array_equal(
        examples["completions"]["piigan"],
        inpainter.sample(examples["images"], examples["masks"], 2, seed=5))
    # Same noise per image whatever the batching, and the same numerics.
    np.testing.assert_array_equal(a.examples["completions"]["piigan"],
                                  b.examples["completions"]["piigan"])
    # (NaN where a figure has nothing to measure, e.g. SWD when no 7x7 patch
    # fits in these small free-form holes, counts as equal to NaN.)
    np.testing.assert_equal(b.means, a.means)
    again = E.evaluate_files(inpainter, image_dir, batch_size=1, **kwargs)
    np.testing.assert_equal(again.means, a.means)  # same call, same numbers
    assert any("disabled" in note for note in a.notes)


# ---------------------------------------------------------- evaluate's steps
def test_complete_batch_is_its_part_of_the_whole_request(inpainter):
    images = np.stack([smooth_image(i, HW) for i in range(3)])
    masks = E.make_eval_masks(3, HW, (16, 16), "box", seed=1)
    completions, seconds = E.complete_batch(inpainter, images[1:], masks[1:], 2, seed=6,
                                            first_image=1)
    assert list(completions) == list(seconds) == ["piigan", *BASELINES_HERE]
    # Images 1 and 2 as a batch of their own get the noise of their index in the whole request.
    np.testing.assert_array_equal(completions["piigan"],
                                  inpainter.sample(images, masks, 2, seed=6)[1:])
    np.testing.assert_array_equal(completions["telea"][:, 0],
                                  E.inpaint_opencv(images[1:], masks[1:], "telea"))
    assert completions["navier_stokes"].shape == (2, 1, 32, 32, 3)
    baselines_only, _ = E.complete_batch(None, images, masks, 2, seed=6, baselines=["telea"])
    assert list(baselines_only) == ["telea"]


def test_score_batch_and_mean_scores_by_hand():
    truth = np.stack([smooth_image(i, HW) for i in range(2)])
    masks = E.make_eval_masks(2, HW, (16, 16), "center")
    hole = masks[..., 0] > 0
    black = np.where(masks[:, None] > 0, np.uint8(0), truth[:, None])  # [2, 1, H, W, 3]
    completions = {"perfect": np.stack([truth, truth], axis=1), "black": black}
    rows, truth_tv = E.score_batch(truth, masks, completions, ["a", "b"])
    assert [(r["image"], r["method"]) for r in rows] == [
        ("a", "perfect"), ("a", "black"), ("b", "perfect"), ("b", "black")]
    assert rows[0]["psnr_hole"] == E.PSNR_CAP_DB and rows[0]["l1_hole"] == 0.0
    for i in range(2):  # a black hole is off by the truth's own values there
        assert rows[2 * i + 1]["l1_hole"] == pytest.approx(truth[i][hole[i]].mean() / 255)
        # ... and its colour is black: the offset is the length of the truth's mean hole colour.
        assert rows[2 * i + 1]["colour_offset_hole"] == pytest.approx(
            np.linalg.norm(truth[i][hole[i]].mean(axis=0)) / 255)
        assert rows[2 * i]["colour_offset_hole"] == 0.0
    assert [t["tv_hole"] for t in truth_tv] == [pytest.approx(float(E.M.total_variation(t, m)))
                        for t, m in zip(truth, masks)]

    means = E.mean_scores(rows, ["black", "perfect"])
    assert list(means) == ["black", "perfect"]
    assert means["black"]["l1_hole"] == pytest.approx(
        (truth[0][hole[0]].mean() + truth[1][hole[1]].mean()) / 2 / 255)
    # An empty hole's NaN is left out of the mean, not propagated.
    made_up = [{"image": "a", "method": "m", "x": 1.0}, {"image": "b", "method": "m", "x": np.nan},
               {"image": "c", "method": "m", "x": 4.0}]
    assert E.mean_scores(made_up, ["m"]) == {"m": {"x": 2.5}}


def test_fid_scores_need_two_images():
    features = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)[:, :4]  # noqa: E731
    images = np.stack([smooth_image(i, HW) for i in range(3)])
    fids, notes = E.fid_scores(features, images[:1], {"m": images[:1]})
    assert fids == {} and notes == ["FID skipped: it needs at least 2 images."]
    fids, notes = E.fid_scores(features, images, {"same": images, "other": images[::-1] // 2})
    assert fids["same"] == pytest.approx(0.0, abs=1e-6) and fids["other"] > 1.0
    assert "FID on 3 images" in notes[0]


def test_missing_imagenet_weights_skip_lpips_and_fid(monkeypatch):
    monkeypatch.setattr(E.M, "load_perceptual_networks",
                        lambda weights="imagenet": (None, None, "no internet (test)"))
    images = np.stack([smooth_image(i, HW) for i in range(2)])
    masks = E.make_eval_masks(2, HW, (16, 16))
    res = E.evaluate(None, images, masks, progress=False)
    assert res.methods == BASELINES_HERE
    assert "lpips" not in res.metric_keys() and "fid" not in res.metric_keys()
    assert res.notes[0] == "LPIPS/FID skipped: no internet (test)."
    assert "LPIPS" not in res.table()


# ----------------------------------------------------------------- report
def test_report_files(result, tmp_path):
    paths = E.write_report(result, tmp_path / "report", grid_samples=2)
    assert {p.name for p in (tmp_path / "report").iterdir()} == {
        "results.md", "metrics.json", "per_image.csv", "metrics.png", "grid.png"}
    markdown = paths["markdown"].read_text()
    assert "| metric | better | PiiGAN (N=3) | OpenCV Telea | OpenCV Navier-Stokes |" in markdown
    assert "| texture ratio: TV inside hole / truth's | closer to 1 |" in markdown
    assert "| SWD hole patches (x1e3, first sample) | lower |" in markdown
    assert f" | {result.truth_seam:.3f} |" in next(
        line for line in markdown.splitlines() if line.startswith("| seam:"))
    assert "best-of-N PSNR" in markdown and "step 3" in markdown

    def no_nan(token):
        raise AssertionError(f"non-standard JSON token {token}")

    payload = json.loads(paths["json"].read_text(), parse_constant=no_nan)
    assert set(payload["means"]) == {"piigan", *BASELINES_HERE}
    methods = 1 + len(BASELINES_HERE)
    assert len(payload["per_image"]) == 4 * methods and "fid" in payload["means"]["telea"]
    assert payload["ground_truth"]["swd_noise_floor"] > 0
    assert payload["ground_truth"]["seam"] == pytest.approx(result.truth_seam)
    # Four images cannot fill four groups of two: no difficulty table.
    assert payload["by_difficulty"] is None and "By difficulty" not in markdown
    rows = paths["csv"].read_text().strip().splitlines()
    assert rows[0].startswith("image,method,psnr,ssim") and len(rows) == 1 + 4 * methods
    chart = cv2.imread(str(paths["chart"]))
    assert chart is not None and chart.shape[0] > 200
    grid = cv2.imread(str(paths["grid"]))
    # 2 rows of 32 px plus a 14 px header; columns truth, input, 2 samples, the baselines.
    columns = 4 + len(BASELINES_HERE)
    assert grid.shape == (14 + 2 * 32 + 2, columns * 32 + (columns - 1) * 2, 3)


def test_by_difficulty_groups_images_by_the_best_baselines_psnr():
    # Eight images; "good" (the best baseline) gets 10..17 dB, "poor" 5 dB less;
    # the model is level with "good" on the four hardest and 8 dB behind on the rest.
    per_image = []
    for i in range(8):
        name = f"img{7 - i}"  # names do not follow the order of difficulty
        good = 10.0 + i
        model = good if i < 4 else good - 8
        per_image += [
            {"image": name, "method": "piigan", "psnr_hole": model, "best_psnr_hole": model + 1,
             "colour_offset_hole": 0.01 * i},
            {"image": name, "method": "good", "psnr_hole": good, "colour_offset_hole": 0.002},
            {"image": name, "method": "poor", "psnr_hole": good - 5, "colour_offset_hole": 0.5}]
    methods = ["piigan", "good", "poor"]
    result = E.EvaluationResult(
        methods=methods, labels={"piigan": "PiiGAN (N=2)", "good": "Good", "poor": "Poor"},
        per_image=per_image, means=E.mean_scores(per_image, methods), truth_tv=0.0, settings={},
        notes=[], timings={}, examples={})
    split = result.by_difficulty(groups=4)
    assert split["reference"] == "good"
    groups = split["groups"]
    assert [(g["count"], g["low"], g["high"]) for g in groups] == [
        (2, 10.0, 11.0), (2, 12.0, 13.0), (2, 14.0, 15.0), (2, 16.0, 17.0)]
    assert [g["psnr_hole"]["piigan"] for g in groups] == [10.5, 12.5, 6.5, 8.5]
    assert [g["psnr_hole"]["poor"] for g in groups] == [5.5, 7.5, 9.5, 11.5]
    assert [g["best_psnr_hole"] for g in groups] == [11.5, 13.5, 7.5, 9.5]
    assert groups[3]["colour_offset_hole"]["piigan"] == pytest.approx(0.065)
    table = result.difficulty_table(groups=4).splitlines()
    assert table[0] == ("| images by Good's hole PSNR | images | PiiGAN (N=2) PSNR hole | Good PSNR hole "
                        "| Poor PSNR hole | PiiGAN (N=2) best of N | PiiGAN (N=2) colour offset "
                        "| Good colour offset |")
    assert table[2] == "| 10.0–11.0 dB (hardest) | 2 | 10.50 | 10.50 | 5.50 | 11.50 | 0.0050 | 0.0020 |"
    assert table[-1].startswith("| 16.0–17.0 dB (easiest) | 2 | 8.50 |")
    assert "By difficulty" in E.markdown_report(dataclasses.replace(
        result, settings={"model": None, "num_images": 8, "image_size": [32, 32], "masks": "center",
                          "mean_hole_fraction": 0.25, "seed": 0, "num_samples": 2,
                          "baseline_radius": 3}))
    assert result.by_difficulty(groups=5) is None  # fewer than two images a group
    model_only = dataclasses.replace(result, methods=["piigan"])
    assert model_only.by_difficulty() is None and model_only.difficulty_table() == ""


# -------------------------------------------------------------------- CLI
def _load_cli():
    spec = importlib.util.spec_from_file_location("evaluate_cli", ROOT / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_with_checkpoint(checkpoint_dir, image_dir, tmp_path, capsys):
    cli = _load_cli()
    out = tmp_path / "eval"
    code = cli.main(["--checkpoint_dir", str(checkpoint_dir), "--data", str(image_dir),
                     "--num_samples", "2", "--max_images", "2", "--output_dir", str(out),
                     "--no_perceptual", "--no_progress", "--mask_type", "random_box"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "PiiGAN (N=2)" in printed and "OpenCV Telea" in printed
    assert (out / "results.md").is_file() and (out / "grid.png").is_file()
    assert json.loads((out / "metrics.json").read_text())["settings"]["step"] == 7


def test_cli_baselines_only_and_errors(image_dir, tmp_path, capsys):
    cli = _load_cli()
    out = tmp_path / "base"
    assert cli.main(["--baselines_only", "--data", str(image_dir), "--output_dir", str(out),
                     "--no_perceptual", "--no_progress"]) == 0
    assert json.loads((out / "metrics.json").read_text())["settings"]["num_images"] == 5
    grid = tmp_path / "grid"
    assert cli.main(["--baselines_only", "--data", str(image_dir), "--output_dir", str(grid),
                     "--crop", "grid", "--max_images", "2", "--no_perceptual",
                     "--no_progress"]) == 0
    settings = json.loads((grid / "metrics.json").read_text())["settings"]
    assert settings["num_images"] == 8 and settings["crop"] == "grid of 2x2"
    with pytest.raises(SystemExit):
        cli.main(["--baselines_only", "--data", str(image_dir), "--windows_per_side", "0"])
    assert cli.main(["--baselines_only", "--data", str(tmp_path / "missing"),
                     "--no_perceptual", "--no_progress"]) == 2
    assert "no such file list or image folder" in capsys.readouterr().err
    assert cli.main(["--checkpoint_dir", str(tmp_path / "none"), "--no_progress"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["--baselines_only"])  # needs --data
