"""Evaluation during training (EVAL_STEPS): eval.csv, its resume rule, the curve plot.

A tiny run (32x32) evaluates every step; its rows must equal what
``evaluate()`` gives for the saved checkpoints, so the CSV measures the model
that was saved at that step and not something else.
"""

import csv
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from piigan_tf import evaluation as E  # noqa: E402
from piigan_tf.config import ConfigError, load_config  # noqa: E402
from piigan_tf.periodic_evaluation import (BASELINE_COLUMNS, MODEL_COLUMNS,  # noqa: E402
                                           PeriodicEvaluator)
from piigan_tf.run_logs import StepLog, read_eval_log  # noqa: E402


def write_images(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        coarse = rng.integers(0, 256, (5, 5, 3)).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.resize(coarse, (48, 40), interpolation=cv2.INTER_CUBIC))
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run of 3 steps evaluated at steps 0..3 on 3 images x 2 samples."""
    from piigan_tf.training import Trainer

    root = tmp_path_factory.mktemp("eval_run")
    train = write_images(root / "train", 8, seed=0)
    val = write_images(root / "val", 4, seed=1)
    lists = root / "lists"
    lists.mkdir()
    (lists / "train.flist").write_text("".join(f"{p}\n" for p in sorted(train.iterdir())))
    (lists / "val.flist").write_text("".join(f"{p}\n" for p in sorted(val.iterdir())))
    config = load_config(None, {
        "DATASET": str(lists / "train.flist"), "DATA_DIR": str(root / "data"), "D_STEPS": 1,
        "TRAIN_SPE": 1, "VAL_PSTEPS": 100, "STATIC_VIEW_SIZE": 0, "RANDOM_CROP": False,
        "EVAL_STEPS": 1, "EVAL_IMAGES": 3, "EVAL_SAMPLES": 2, "SEED": 5}, preset="tiny")
    trainer = Trainer(config, checkpoint_dir=root / "ckpt", log_dir=root / "logs", resume=False)
    trainer.fit(max_iters=3, progress=False)
    return trainer, config, root


def test_rows_at_every_eval_step_with_model_and_baseline_columns(run):
    trainer, _, root = run
    rows = read_eval_log(root / "logs" / "eval.csv")
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    baselines, _ = E.available_baselines()
    expected = ["step", *MODEL_COLUMNS, *(f"{m}_{k}" for m in baselines for k in BASELINE_COLUMNS),
                "swd_noise_floor", "truth_seam"]
    assert list(rows[0]) == expected
    for row in rows:
        assert 0 < row["l1_hole"] < 1 and row["diversity_l1"] > 0
        assert row["texture_ratio"] > 0 and row["swd"] > 0 and row["swd_noise_floor"] > 0
        assert row["seam"] > 0 and row["telea_seam"] > 0 and row["truth_seam"] > 0
        assert row["telea_texture_ratio"] < row["texture_ratio"]  # a smear is smoother than noise
        assert row["best_psnr_hole"] >= row["psnr_hole"]
        # The baselines are deterministic and computed once: the same in every row.
        assert row["telea_psnr_hole"] == rows[0]["telea_psnr_hole"] > 0
    # Training changes the generator, so the model's figures move.
    assert len({r["psnr_hole"] for r in rows}) == 4


def test_rows_equal_evaluate_on_the_saved_checkpoints(run):
    """Row k is evaluate() of ckpt-k: same images (resized: RANDOM_CROP false), holes and noise."""
    from piigan_tf.inference import Inpainter

    _, config, root = run
    rows = read_eval_log(root / "logs" / "eval.csv")
    val = E.default_eval_data(config)
    for step in (2, 3):
        result = E.evaluate_files(Inpainter.from_checkpoint(root / "ckpt" / f"ckpt-{step}"), val,
                                  num_samples=2, max_images=3, seed=5, perceptual=False,
                                  progress=False)
        assert result.settings["crop"] == "resize"
        for key in MODEL_COLUMNS:
            assert rows[step][key] == pytest.approx(result.means[E.MODEL_KEY][key], rel=1e-6, abs=1e-9), key
        assert rows[step]["telea_ssim_hole"] == pytest.approx(result.means["telea"]["ssim_hole"])


def test_resume_keeps_rows_up_to_the_restored_step_and_continues(run, tmp_path):
    from piigan_tf.training import Trainer

    _, config, root = run
    ckpt, logs = tmp_path / "ckpt", tmp_path / "logs"
    shutil.copytree(root / "ckpt", ckpt)
    shutil.copytree(root / "logs", logs, ignore=shutil.ignore_patterns("events.*"))
    # A row past the checkpoint (a kill after evaluating, before saving) and
    # half a row: both must go.
    columns = len(read_eval_log(logs / "eval.csv")[0])
    with open(logs / "eval.csv", "a") as handle:
        handle.write("9," + ",".join(["0.5"] * (columns - 1)) + "\n10,0.1,0.2")
    assert [r["step"] for r in read_eval_log(logs / "eval.csv")] == [0, 1, 2, 3, 9]
    Trainer(config, checkpoint_dir=ckpt, log_dir=logs).fit(max_iters=4, progress=False)
    rows = read_eval_log(logs / "eval.csv")
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    with open(logs / "eval.csv", newline="") as handle:
        assert sum(1 for _ in csv.reader(handle)) == 6  # one header, five rows


def test_eval_log_keeps_nothing_on_a_fresh_run(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("step,psnr_hole\n5,1.0\n")
    log = StepLog(path, start=0)
    log.write(0, {"psnr_hole": 2.5})
    log.close()
    assert read_eval_log(path) == [{"step": 0, "psnr_hole": 2.5}]


def test_eval_log_widens_for_a_newer_version_that_measures_more(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("step,psnr_hole\n0,1.0\n250,2.0\n500,3.0\n")  # a kill after step 500
    log = StepLog(path, start=250)  # resumed at 250 by a version with one more column
    log.write(500, {"psnr_hole": 3.5, "colour_offset_hole": 0.25})
    log.write(750, {"psnr_hole": 4.0, "colour_offset_hole": 0.125})
    log.close()
    rows = read_eval_log(path)
    assert [r["step"] for r in rows] == [0, 250, 500, 750]
    assert path.read_text().splitlines()[0] == "step,psnr_hole,colour_offset_hole"
    assert [r["psnr_hole"] for r in rows] == [1.0, 2.0, 3.5, 4.0]
    assert np.isnan(rows[0]["colour_offset_hole"]) and np.isnan(rows[1]["colour_offset_hole"])
    assert [r["colour_offset_hole"] for r in rows[2:]] == [0.25, 0.125]
    # A later resume keeps the wider file as it is.
    log = StepLog(path, start=750)
    log.write(1000, {"psnr_hole": 5.0, "colour_offset_hole": 0.0625})
    log.close()
    assert len(read_eval_log(path)) == 5 and not list(tmp_path.glob("*.tmp"))


def test_evaluator_follows_the_training_preprocessing(tmp_path):
    folder = write_images(tmp_path / "val", 2, seed=3)
    files = [str(p) for p in sorted(folder.iterdir())]
    for random_crop, crop in ((False, "resize"), (True, "center")):
        config = load_config(None, {"RANDOM_CROP": random_crop, "EVAL_IMAGES": 2}, preset="tiny")
        evaluator = PeriodicEvaluator(config, files)
        _, expected = E.load_eval_images(files, (32, 32), crop)
        np.testing.assert_array_equal(evaluator.images, expected)
        # The reference test's hole: HEIGHT x WIDTH at the centre, the same for every image.
        assert evaluator.masks.shape == (2, 32, 32, 1)
        assert evaluator.masks[:, 8:24, 8:24].all() and evaluator.masks.sum() == 2 * 16 * 16


def test_eval_keys_are_validated():
    with pytest.raises(ConfigError, match="EVAL_STEPS"):
        load_config(None, {"EVAL_STEPS": -1})
    with pytest.raises(ConfigError, match="EVAL_SAMPLES"):
        load_config(None, {"EVAL_SAMPLES": 0})


def test_learning_curve_command(run, tmp_path, capsys):
    import matplotlib.image

    from piigan_tf.cli.learning_curve import main

    _, _, root = run
    out = tmp_path / "curve.png"
    assert main([str(root / "logs" / "eval.csv"), "-o", str(out)]) == 0
    assert "4 evaluations (steps 0..3)" in capsys.readouterr().out
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (715, 2200)  # 20 x 6.5 inches at 110 dpi: 2 x 4 panels (7 drawn)
    assert main([str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("step,psnr_hole\n")
    assert main([str(tmp_path / "empty.csv")]) == 2


def test_learning_curve_joins_a_run_trained_in_segments(tmp_path, capsys):
    from piigan_tf.cli.learning_curve import main
    from piigan_tf.learning_curve import join_segments
    from piigan_tf.run_logs import write_eval_log

    def rows(steps, base):
        return [{"step": s, "psnr_hole": base + s / 100, "ssim_hole": 0.5, "l1_hole": 0.1,
                 "diversity_l1": 0.05, "telea_psnr_hole": 12.0} for s in steps]

    first, second = rows([0, 250, 500], 10.0), rows([0, 250], 20.0)
    joined = join_segments([first, second], [0, 400])
    # The second segment's step 0 is step 400; its rows win from there on.
    assert [r["step"] for r in joined] == [0, 250, 400, 650]
    assert joined[2]["psnr_hole"] == 20.0 and joined[1]["psnr_hole"] == 12.5
    with pytest.raises(ValueError, match="offsets"):
        join_segments([first, second], [0])
    with pytest.raises(ValueError, match="decrease"):
        join_segments([first, second], [400, 0])

    a, b = write_eval_log(first, tmp_path / "a.csv"), write_eval_log(second, tmp_path / "b.csv")
    assert read_eval_log(a) == first  # exact round trip
    out, merged = tmp_path / "curve.png", tmp_path / "joined.csv"
    assert main([str(a), str(b), "--offsets", "0", "400", "-o", str(out),
                 "--write_csv", str(merged)]) == 0
    assert "4 evaluations (steps 0..650)" in capsys.readouterr().out
    assert read_eval_log(merged) == joined and out.stat().st_size > 10_000
    with pytest.raises(SystemExit):  # several files need their offsets
        main([str(a), str(b)])


def test_a_step_log_that_cannot_be_written_warns_in_one_line(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = StepLog(blocker / "losses.jsonl", 0, what="losses")  # its folder is a file
    log.write(1, {"loss": 1.0})  # nothing to write to: no error
    log.close()
    (record,) = [r for r in caplog.records if "cannot write" in r.getMessage()]
    message = record.getMessage()
    assert "[ENOTDIR]" in message or "[EEXIST]" in message, message
    assert message.endswith("losses go to TensorBoard only") and "\n" not in message


def test_trends_tell_a_rising_measure_from_noise():
    from piigan_tf.learning_curve import trends

    steps = [0, 250, 500, 750, 1000, 1250]
    jitter = [0.4, -0.4, 0.4, -0.4, 0.4, -0.4]  # alternating: mean 0, no trend
    rows = [{"step": s,
             "psnr_hole": 20.0 + 2.0 * s / 1000,  # exactly +2 dB per 1,000 steps
             "ssim_hole": 0.4 + j,  # flat, noisy
             "l1_hole": 0.1 + 0.01 * s / 1000,  # lower is better: rising is worse
             "texture_ratio": 1.5 - 0.4 * s / 1000,  # 1.5 -> 1.0: nearer 1 each time
             "swd": 300.0 - 40.0 * s / 1000 + 5 * j}
            for s, j in zip(steps, jitter)]
    found = {t.key: t for t in trends(rows, last=6)}
    assert set(found) == {"psnr_hole", "ssim_hole", "l1_hole", "texture_ratio", "swd"}
    psnr = found["psnr_hole"]
    assert psnr.slope == pytest.approx(2.0) and psnr.stderr == pytest.approx(0.0, abs=1e-9)
    assert psnr.verdict == "improving" and psnr.last == pytest.approx(22.5)
    assert found["ssim_hole"].verdict == "flat (within noise)"
    # By hand: x - mean(x) = -.625 ... .625 (thousands of steps), sum of squares 1.09375,
    # sum((x - mean) * y) = 0.4 * (-.625 + .375 - .125 - .125 + .375 - .625) = -0.3.
    assert found["ssim_hole"].slope == pytest.approx(-0.3 / 1.09375, rel=1e-9)
    assert found["l1_hole"].verdict == "worsening"
    assert found["texture_ratio"].slope == pytest.approx(-0.4) and \
        found["texture_ratio"].verdict == "improving"
    assert found["swd"].verdict == "improving"  # -40 per 1,000 steps against +-2 of noise

    # Only the last N rows count: over the last 3 the PSNR turns down.
    rows.append({"step": 1500, "psnr_hole": 19.0})
    rows.append({"step": 1750, "psnr_hole": 15.5})
    (late,) = trends(rows, last=3)
    assert late.key == "psnr_hole" and late.verdict == "worsening"
    with pytest.raises(ValueError, match="at least 3"):
        trends(rows, last=2)


def test_learning_curve_command_prints_the_trend(tmp_path, capsys):
    from piigan_tf.cli.learning_curve import main
    from piigan_tf.run_logs import write_eval_log

    rows = [{"step": s, "psnr_hole": 10.0 + s / 100, "ssim_hole": 0.5, "l1_hole": 0.1,
             "diversity_l1": 0.05} for s in (0, 100, 200, 300)]
    csv_path = write_eval_log(rows, tmp_path / "eval.csv")
    assert main([str(csv_path), "-o", str(tmp_path / "c.png"), "--trend_last", "3"]) == 0
    out = capsys.readouterr().out
    assert "trend over steps 100..300" in out
    (psnr,) = [line for line in out.splitlines() if line.strip().startswith("hole PSNR")]
    assert "+10" in psnr and psnr.rstrip().endswith("improving")
    assert "hole SSIM" in out and "flat (within noise)" in out
    assert main([str(csv_path), "-o", str(tmp_path / "c.png"), "--trend_last", "0"]) == 0
    assert "trend" not in capsys.readouterr().out
    write_eval_log(rows[:2], tmp_path / "short.csv")
    assert main([str(tmp_path / "short.csv"), "-o", str(tmp_path / "c.png")]) == 0
    assert "no trend: 2 evaluation(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(csv_path), "--trend_last", "2"])


def test_learning_curve_panels_zoom_past_the_untrained_start():
    import matplotlib.pyplot as plt

    from piigan_tf.learning_curve import learning_curve_figure, zoomed_limits

    # Later values 20..22 and a baseline at 23: range 20..23, 8 % of 3 dB either side.
    assert zoomed_limits([7.7, 20.0, 22.0], [23.0]) == pytest.approx((19.76, 23.24))
    assert zoomed_limits([7.7, 20.0], [23.0]) is None  # one later value: nothing to zoom on
    assert zoomed_limits([0.3, float("nan"), 0.1, 0.1]) == pytest.approx((0.095, 0.105))

    rows = [{"step": s, "psnr_hole": p, "l1_hole": l1, "telea_psnr_hole": 23.0, "telea_l1_hole": 0.06}
            for s, p, l1 in ((0, 7.7, 0.34), (250, 20.0, 0.09), (500, 22.0, 0.08))]
    fig = learning_curve_figure(rows)
    psnr, l1 = fig.axes[:2]
    assert psnr.get_ylim() == pytest.approx((19.76, 23.24))
    assert l1.get_ylim() == pytest.approx((0.06 - 0.0024, 0.09 + 0.0024))
    # Step 0 is off both scales: marked at the edge it left by, with its value.
    assert [t.get_text() for t in psnr.texts] == ["step 0: 7.7"]
    assert [t.get_text() for t in l1.texts] == ["step 0: 0.34"]
    assert psnr.texts[0].xy == pytest.approx((0, 19.76)) and l1.texts[0].xy == pytest.approx((0, 0.0924))
    plt.close(fig)

    fig = learning_curve_figure(rows, full_range=True)
    low, high = fig.axes[0].get_ylim()
    assert low < 7.7 and high > 23.0 and not fig.axes[0].texts
    plt.close(fig)


def test_learning_curve_zoom_covers_the_lines_each_panel_draws():
    import matplotlib.pyplot as plt

    from piigan_tf.learning_curve import learning_curve_figure

    # Texture ratios 0.6..0.7 with the real holes' 1.0 drawn; SWD 250..300 with
    # the noise floor at 20 and Navier-Stokes at 400: each range must reach its lines.
    rows = [{"step": s, "texture_ratio": t, "swd": d, "swd_noise_floor": 20.0,
             "navier_stokes_swd": 400.0, "navier_stokes_texture_ratio": 0.37}
            for s, t, d in ((0, 11.6, 903.0), (250, 0.6, 300.0), (500, 0.7, 250.0))]
    fig = learning_curve_figure(rows)
    texture, swd = fig.axes[:2]
    drawn = {ax: {line.get_label(): line.get_ydata()[0] for line in ax.lines
                  if len(line.get_ydata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]}
             for ax in (texture, swd)}
    assert drawn[texture] == {"OpenCV Navier-Stokes": 0.37, "real holes": 1.0}
    assert drawn[swd] == {"OpenCV Navier-Stokes": 400.0, "noise floor (real vs real)": 20.0}
    assert texture.get_ylim() == pytest.approx((0.37 - 0.0504, 1.0 + 0.0504))
    assert swd.get_ylim() == pytest.approx((20.0 - 30.4, 400.0 + 30.4))
    plt.close(fig)


def test_learning_curve_seam_panel_draws_the_real_holes_value():
    import matplotlib.pyplot as plt

    from piigan_tf.learning_curve import learning_curve_figure

    rows = [{"step": s, "seam": v, "truth_seam": 1.35, "fsr_seam": 0.93}
            for s, v in ((0, 4.0), (250, 2.0), (500, 1.8))]
    fig = learning_curve_figure(rows)
    (seam,) = [ax for ax in fig.axes if ax.get_title().startswith("seam ratio")]
    drawn = {line.get_label(): line.get_ydata()[0] for line in seam.lines
             if len(line.get_ydata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]}
    assert drawn == {"OpenCV FSR": 0.93, "real holes": 1.35}
    # Segments from before the column have no seam panel at all.
    older = learning_curve_figure([{k: v for k, v in r.items() if "seam" not in k} | {"swd": 1.0}
                                   for r in rows])
    assert not [ax for ax in older.axes if ax.get_title().startswith("seam ratio")]
    plt.close(fig)
    plt.close(older)
