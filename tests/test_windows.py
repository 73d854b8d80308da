"""Holes completed in windows around them (piigan_tf.windows), in process and exported.

A tiny random generator (the ``tiny`` preset, 32x32) with a 32-pixel window
keeps the images small: a 96x120 image is then "large" and windowed.
"""

import os
import struct
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf import sampling, serving, windows  # noqa: E402
from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.export import export_saved_model  # noqa: E402
from piigan_tf.inference import Inpainter  # noqa: E402
from piigan_tf.model import PiiGAN  # noqa: E402

WINDOW, MARGIN, SEED = 32, 8, 5
H, W = 96, 120


def plan(mask, window=WINDOW, margin=MARGIN):
    rows, labels = windows.plan_windows(tf.constant(mask, tf.uint8), window, margin)
    return rows.numpy(), labels.numpy()


def holes(*boxes, hw=(H, W), batch=1):
    mask = np.zeros((batch, *hw, 1), np.uint8)
    for top, left, h, w in boxes:
        mask[:, top:top + h, left:left + w] = 1
    return mask


# ------------------------------------------------------------- planning
def test_defaults_follow_the_training_size():
    assert windows.default_window((64, 64)) == 256 and windows.default_margin((64, 64)) == 32
    assert windows.default_window((256, 256)) == 512 and windows.default_margin((256, 256)) == 128


def test_no_hole_no_window_and_small_image_is_one_whole_window():
    assert plan(holes(hw=(H, W))[0])[0].shape == (0, 5)
    rows, _ = plan(holes((4, 4, 8, 8), hw=(24, 30))[0])
    assert rows[:, :4].tolist() == [[0, 0, 24, 30]]


def test_far_holes_get_their_own_windows_and_near_ones_share_one():
    rows, labels = plan(holes((10, 10, 8, 8), (70, 90, 10, 12))[0])
    assert len(rows) == 2
    for top, left, h, w, _ in rows:
        assert h == w == WINDOW and 0 <= top <= H - h and 0 <= left <= W - w
    # each hole lies inside its own window, with the margin where the image allows
    (t0, l0, h0, w0, g0), (t1, l1, h1, w1, g1) = rows
    assert t0 <= 10 - MARGIN and 18 + MARGIN <= t0 + h0 and l0 <= 10 - MARGIN
    assert t1 <= 70 - MARGIN and 80 + MARGIN <= t1 + h1 and l1 <= 90 - MARGIN
    assert labels[10 // 8, 10 // 8] == g0 and labels[70 // 8, 90 // 8] == g1 and g0 != g1
    rows, _ = plan(holes((10, 10, 8, 8), (10, 22, 8, 8))[0])
    assert len(rows) == 1


def test_border_hole_window_is_clamped_and_big_hole_gets_a_bigger_window():
    rows, _ = plan(holes((0, W - 6, 6, 6))[0])
    assert rows[:, :4].tolist() == [[0, W - WINDOW, WINDOW, WINDOW]]
    rows, _ = plan(holes((30, 30, 40, 50))[0])
    (top, left, h, w, _), = rows
    assert h >= 40 + 2 * MARGIN and w >= 50 + 2 * MARGIN and h % 8 == 0 and w % 8 == 0
    assert top <= 30 - MARGIN and left <= 30 - MARGIN
    rows, _ = plan(np.ones((H, W, 1), np.uint8))
    assert rows[:, :4].tolist() == [[0, 0, H, W]]


def test_window_noise_is_the_rule_fields_cut_to_the_window():
    full = serving.noise(SEED, 3, 4, H, W)
    box = tf.constant([40, 17, 32, 48])
    part = windows.window_noise(SEED, 2, 1, 3, W, box).numpy()
    np.testing.assert_array_equal(part, full[2, 1:, 40:72, 17:65])


# ------------------------------------------------------------ completing
@pytest.fixture(scope="module")
def generator():
    config = load_config(preset="tiny")
    model = PiiGAN.from_config_object(config)
    model.build()
    return model.generator, config


@pytest.fixture(scope="module")
def inpainter(generator):
    inp = Inpainter.from_generator(*generator)
    inp.window, inp.margin = WINDOW, MARGIN
    inp.module.margin = MARGIN
    return inp


def images(batch=2, hw=(H, W), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, *hw, 3), dtype=np.uint8)


@tf.function(reduce_retracing=True)
@tf.function  # a graph, as Inpainter.sample runs (eager kernels may round differently)
def _today(generator, images, masks, seed, n):
    images, masks = serving.check_inputs(images, masks)
    shape = tf.shape(images)
    z = serving.sample_noise(seed, shape[0], n, shape[1], shape[2])
    return serving.complete_with_noise(generator, images, masks, z)


def test_an_image_within_the_window_is_completed_as_before_bit_for_bit(inpainter, generator):
    x, m = images(2, (30, 37)), holes((8, 9, 12, 14), hw=(30, 37), batch=2)
    got = inpainter.sample(x, m, 3, seed=SEED, window=40)
    want = _today(generator[0], tf.constant(x), tf.constant(m), tf.constant(SEED),
                  tf.constant(3)).numpy()
    # The same ops on the same noise; two separately built graphs may still
    # round a value the other way now and then (oneDNN's threaded kernels).
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    # and a window over the whole image (no windowing) gives the same as the default
    np.testing.assert_array_equal(inpainter.sample(x, m, 3, seed=SEED, window=64), got)


def test_each_group_is_its_own_window_completed(inpainter):
    x = images(1)
    m = holes((2, 3, 9, 10), (60, 100, 20, 12), (40, 40, 8, 8))
    got = inpainter.sample(x, m, 2, seed=SEED)
    hole = m[0, ..., 0] > 0
    np.testing.assert_array_equal(got[0][:, ~hole], np.broadcast_to(x[0][~hole], (2,) + x[0][~hole].shape))
    assert (got[0][:, hole] != x[0][hole]).any()
    z = inpainter.noise(x, 2, SEED)
    rows, labels = plan(m[0])
    assert len(rows) == 3
    for top, left, h, w, label in rows:
        crop = np.s_[top:top + h, left:left + w]
        alone = inpainter.module.complete_with_noise(
            x[:, top:top + h, left:left + w], m[:, top:top + h, left:left + w],
            z[:, :, top:top + h, left:left + w])["completions"].numpy()[0]
        own = np.zeros((H, W), bool)
        own[crop] = np.repeat(np.repeat(labels, 8, 0), 8, 1)[:H, :W][crop] == label
        own &= hole
        np.testing.assert_array_equal(got[0][:, own], alone[:, own[crop]])


def test_seed_rule_holds_with_windows(inpainter):
    x = images(2)
    m = holes((2, 3, 9, 10), (60, 100, 20, 12), batch=2)
    both = inpainter.sample(x, m, 3, seed=SEED)
    second = inpainter.sample(x[1:], m[1:], 3, seed=SEED, first_image=1)
    np.testing.assert_array_equal(both[1:], second)
    # Split by samples, a window's pass has another batch size (1 instead of
    # 3 + 1): the same noise, but oneDNN's kernels may round a value of a
    # pixel the other way now and then (as for whole images).
    later = inpainter.sample(x, m, 1, seed=SEED, first_sample=2)
    diff = np.abs(both[:, 2:].astype(int) - later)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    explicit = inpainter.sample(x, m, z=inpainter.noise(x, 3, SEED))
    np.testing.assert_array_equal(both, explicit)


def test_empty_and_full_masks(inpainter):
    x = images(1)
    np.testing.assert_array_equal(inpainter.sample(x, holes(), 2, seed=SEED)[0],
                                  np.repeat(x, 2, 0))
    full = inpainter.sample(x, np.ones((1, H, W, 1), np.uint8), 1, seed=SEED)
    assert full.shape == (1, 1, H, W, 3)


def test_memory_refusal_names_what_to_lower(inpainter, monkeypatch):
    x, m = images(1), holes((2, 3, 9, 10))
    needed, ph, pw = inpainter.pass_size(m, 4)
    assert (ph, pw) == (WINDOW, WINDOW) and needed > windows.BASE_BYTES
    monkeypatch.setattr(inpainter, "max_memory", needed - 1)
    with pytest.raises(ValueError, match=r"needs about .* GB of memory .* lower the number of "
                                         r"samples .* or the window"):
        inpainter.sample(x, m, 4, seed=SEED)
    monkeypatch.setattr(inpainter, "max_memory", needed + 1)
    inpainter.sample(x, m, 4, seed=SEED)


def test_estimate_grows_with_the_hole_not_the_image():
    small = windows.estimate(holes((40, 40, 16, 16), hw=(256, 256)), 4, 64, 16)
    large = windows.estimate(holes((40, 40, 16, 16), hw=(2048, 2048)), 4, 64, 16)
    assert small[1:] == large[1:] == (64, 64)
    whole = windows.estimate(holes((40, 40, 16, 16), hw=(2048, 2048)), 4, 4096, 16)
    assert whole[0] > 100 * large[0]


def png_header(height, width):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(
        ">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_huge_image_file_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header(20000, 20000))
    assert sampling.image_size(path) == (20000, 20000)
    with pytest.raises(sampling.RequestError, match="20000x20000 pixels: decoding it and its 4 "
                                                    "sample.* fewer --num_samples"):
        sampling.check_decodable(path, 8e9, num_samples=4)
    sampling.check_decodable(path, None, num_samples=4)  # no limit: nothing checked
    assert serving.encoded_size(tf.constant(png_header(20000, 30000))).numpy().tolist() == \
        [20000, 30000]


# -------------------------------------------------------------- exported
@pytest.fixture(scope="module")
def exported(generator, tmp_path_factory):
    root = tmp_path_factory.mktemp("windows_export")
    gen, config = generator
    path = export_saved_model(root, generator=gen, config=config, window=WINDOW,
                              max_memory=3e9)
    return Inpainter.from_saved_model(path), tf.saved_model.load(str(path))


def test_saved_model_windows_inside_its_graph(inpainter, exported):
    served, _ = exported
    assert (served.window, served.margin) != (None, None)
    x = images(2)
    m = holes((2, 3, 9, 10), (60, 100, 20, 12), batch=2)
    # the in-process margin is the exported one (the tiny model's default)
    live = Inpainter.from_generator(inpainter.module.generator, config=served.config)
    live.window = WINDOW
    want = live.sample(x, m, 3, seed=SEED)
    np.testing.assert_array_equal(served.sample(x, m, 3, seed=SEED), want)
    np.testing.assert_array_equal(served.sample(x[1:], m[1:], 2, seed=SEED, first_image=1,
                                                first_sample=1), want[1:, 1:])


def test_served_request_over_memory_is_invalid_argument(exported):
    _, loaded = exported
    serve = loaded.signatures["serving_default"]
    x = images(1, (2000, 2000))
    m = np.ones((1, 2000, 2000, 1), np.uint8)  # all hole: one 2000x2000 window
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="lower the number of samples .* or the window"):
        serve(images=tf.constant(x), masks=tf.constant(m), num_samples=tf.constant(2),
              seed=tf.constant(0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="too large to decode"):
        loaded.signatures["sample_bytes"](
            images_bytes=tf.constant([png_header(20000, 20000)]),
            masks_bytes=tf.constant([png_header(20000, 20000)]),
            num_samples=tf.constant(1), seed=tf.constant(0))


# ---------------------------------------------------------------- test.py
def test_sampling_program_windows_refuses_and_notes(generator, tmp_path, capsys):
    import cv2

    from piigan_tf.cli import sample

    gen, config = generator
    ckpt = tmp_path / "ckpt"
    model = PiiGAN.from_config_object(config)
    model.build()
    model.generator.set_weights(gen.get_weights())
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(ckpt), 1).save(1)
    config.dump(ckpt / "config.yml")
    cv2.imwrite(str(tmp_path / "photo.png"), images(1)[0][:, :, ::-1])
    cv2.imwrite(str(tmp_path / "hole.png"), holes((2, 3, 9, 10), (60, 100, 20, 12))[0] * 255)
    cv2.imwrite(str(tmp_path / "all.png"), np.full((H, W), 255, np.uint8))
    (tmp_path / "huge.png").write_bytes(png_header(20000, 20000))
    common = ["--checkpoint_dir", str(ckpt), "--image", str(tmp_path / "photo.png"),
              "--num_samples", "2", "--seed", "3", "--no_progress"]

    assert sample.main(common + ["--mask", str(tmp_path / "hole.png"), "--window", "32",
                                 "--output_dir", str(tmp_path / "out"), "--output", ""]) == 0
    written = cv2.imread(str(tmp_path / "out" / "photo_sample01.png"))[:, :, ::-1]
    inp = Inpainter.from_checkpoint(ckpt)
    want = inp.sample(images(1), holes((2, 3, 9, 10), (60, 100, 20, 12)), 2, seed=3, window=32)
    np.testing.assert_array_equal(written, want[0, 1])

    assert sample.main(common + ["--mask", str(tmp_path / "hole.png"), "--window", "32",
                                 "--max_memory", "0.801", "--output", ""]) == 2  # decodes, cannot run
    assert "lower the number of samples" in capsys.readouterr().err
    assert sample.main(common + ["--mask", str(tmp_path / "all.png"), "--output", ""]) == 0
    assert "is all hole: the whole image is generated" in capsys.readouterr().err
    huge = ["--checkpoint_dir", str(ckpt), "--image", str(tmp_path / "huge.png"),
            "--max_memory", "16", "--output", ""]
    assert sample.main(huge) == 2
    assert "20000x20000 pixels: decoding it" in capsys.readouterr().err
