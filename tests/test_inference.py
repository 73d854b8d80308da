"""Pluralistic sampling API (piigan_tf.inference) and the test.py CLI, at 32x32.

The checkpoint holds random weights: these tests check the plumbing (shapes,
noise, padding, composition, reproducibility, errors), not image quality.
"""

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.inference import Inpainter, center_box_mask  # noqa: E402
from piigan_tf.loading import (CheckpointNotFoundError, latest_checkpoint_dir,  # noqa: E402
                               load_generator)

ROOT = Path(__file__).resolve().parent.parent
N = 4


def random_inputs(batch=2, hw=(30, 37), seed=0):
    """uint8 images and 0/255 masks with a box hole; sizes not multiples of 8."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, *hw, 3), dtype=np.uint8)
    masks = np.zeros((batch, *hw, 1), np.uint8)
    masks[:, 8:20, 10:26] = 255
    masks[1:, 2:6, 2:6] = 255  # per-image masks
    return images, masks


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, write_checkpoint):
    root = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(root / "sample")
    return root


@pytest.fixture(scope="module")
def inpainter(checkpoints):
    return Inpainter.from_checkpoint(root=checkpoints)


def test_samples_differ_in_hole_and_keep_known_pixels(inpainter):
    images, masks = random_inputs()
    samples = inpainter.sample(images, masks, num_samples=N, seed=1)
    assert samples.shape == (2, N, 30, 37, 3) and samples.dtype == np.uint8
    hole = masks[..., 0] > 0
    for b in range(2):
        for j in range(N):
            # Known pixels are the input bytes, exactly.
            np.testing.assert_array_equal(samples[b, j][~hole[b]], images[b][~hole[b]])
        for j in range(1, N):
            differ = np.any(samples[b, 0][hole[b]] != samples[b, j][hole[b]], axis=-1)
            assert differ.mean() > 0.5, f"sample {j} of image {b} repeats sample 0 in the hole"


def test_seed_reproduces_and_explicit_z_matches(inpainter):
    images, masks = random_inputs()
    a = inpainter.sample(images, masks, N, seed=7)
    np.testing.assert_array_equal(a, inpainter.sample(images, masks, N, seed=7))
    assert inpainter.last_seed == 7
    assert not np.array_equal(a, inpainter.sample(images, masks, N, seed=8))
    z = inpainter.noise(images, N, seed=7)
    assert z.shape == (2, N, 30, 37, 1)
    np.testing.assert_array_equal(a, inpainter.sample(images, masks, z=z))
    # No seed: a fresh one, recorded so the call can be repeated.
    b = inpainter.sample(images, masks, N)
    np.testing.assert_array_equal(b, inpainter.sample(images, masks, N, seed=inpainter.last_seed))


def test_noise_of_a_sample_depends_on_seed_image_index_and_sample_index_only(inpainter):
    images, masks = random_inputs(batch=3)
    ten = inpainter.sample(images, masks, 10, seed=4)
    np.testing.assert_array_equal(inpainter.sample(images[:1], masks[:1], 3, seed=4)[0], ten[0, :3])
    for i in range(3):  # an image alone, at its index in the request
        np.testing.assert_array_equal(
            inpainter.sample(images[i], masks[i], 10, seed=4, first_image=i)[0], ten[i])
    part = inpainter.sample(images[1:], masks[1:], 4, seed=4, first_image=1, first_sample=6)
    np.testing.assert_array_equal(part, ten[1:, 6:])
    # The rule as documented, written out.
    z = inpainter.noise(images, 10, 4)
    np.testing.assert_array_equal(
        z[2, 7], tf.random.stateless_normal([30, 37, 1], seed=tf.random.fold_in([4, 2], 7)))
    np.testing.assert_array_equal(inpainter.noise(images[2:], 3, 4, first_image=2, first_sample=5),
                                  z[2:, 5:8])
    with pytest.raises(ValueError, match="first_image"):
        inpainter.sample(images, masks, 2, seed=0, first_image=-1)


def assert_same_but_rare_rounding(a, b):
    """uint8 completions of the same noise from passes of different batch sizes:
    TensorFlow's CPU kernels (oneDNN on or off) may round a value the other way
    now and then, so at most one level apart, in fewer than one value in a thousand."""
    diff = np.abs(np.asarray(a, int) - np.asarray(b, int))
    assert diff.shape == np.shape(b) and diff.max() <= 1 and (diff > 0).mean() < 1e-3, \
        (diff.max(), (diff > 0).mean())


def test_one_batched_pass_per_call(inpainter, monkeypatch):
    """All B * N samples go through the generator in a single call."""
    images, masks = random_inputs()
    generator = inpainter.module.generator
    calls = []
    original = type(generator).__call__

    def counting_call(self, inputs, *args, **kwargs):
        calls.append(int(inputs[0].shape[0]))
        return original(self, inputs, *args, **kwargs)

    monkeypatch.setattr(type(generator), "__call__", counting_call)
    fn = inpainter.module._sample  # the uncompiled function, run eagerly to count calls
    fn(tf.constant(images), tf.constant(masks), tf.constant(5), tf.constant(1))
    assert calls == [2 * 5]
    # An odd batch above 1 runs as the next even one (oneDNN rounds odd batches
    # differently); its samples are those of any other call.
    out = fn(tf.constant(images[:1]), tf.constant(masks[:1]), tf.constant(3), tf.constant(1))
    one = fn(tf.constant(images[:1]), tf.constant(masks[:1]), tf.constant(1), tf.constant(1))
    assert calls[1:] == [4, 1] and out["completions"].shape[:2] == (1, 3)
    assert_same_but_rare_rounding(out["completions"][:, :1], one["completions"])


@pytest.mark.parametrize("hw", [(1, 1), (7, 13), (8, 8), (33, 17), (40, 64)])
def test_any_size_comes_back_at_its_size(inpainter, hw):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    mask = center_box_mask(hw, (16, 16))
    out = inpainter.sample(image, mask, 2, seed=0)
    assert out.shape == (1, 2, *hw, 3)
    known = mask[..., 0] == 0
    np.testing.assert_array_equal(out[0, 1][known], image[known])


def test_mask_conventions_agree(inpainter):
    images, masks = random_inputs(batch=1)
    ref = inpainter.sample(images, masks, 2, seed=3)
    hole = masks[0, ..., 0] > 0
    for variant in (hole.astype(np.uint8),          # 0/1, [H, W]
                    hole,                           # bool
                    hole.astype(np.float32)[..., None],  # float {0, 1}, [H, W, 1]
                    masks[0] // 255 * 17):          # any non-zero value
        np.testing.assert_array_equal(ref, inpainter.sample(images[0], variant, 2, seed=3))


def test_one_mask_for_all_images(inpainter):
    images, masks = random_inputs()
    shared = inpainter.sample(images, masks[:1], 2, seed=4)
    np.testing.assert_array_equal(
        shared, inpainter.sample(images, np.repeat(masks[:1], 2, 0), 2, seed=4))


def test_mask_without_hole_returns_image_unchanged(inpainter):
    images, _ = random_inputs()
    out = inpainter.sample(images, np.zeros(images.shape[:3], np.uint8), 3, seed=0)
    np.testing.assert_array_equal(out, np.repeat(images[:, None], 3, axis=1))


@pytest.mark.parametrize("images, masks, kwargs, message", [
    (np.zeros((2, 2, 8, 8, 3), np.uint8), np.zeros((8, 8)), {}, "shape"),
    (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8)), {}, "RGBA"),
    (np.zeros((8, 8), np.uint8), np.zeros((8, 8)), {}, "greyscale"),
    (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8)), {}, "uint8"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9)), {}, "differs from image size"),
    (np.zeros((3, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 1)), {}, "2 masks for 3 images"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 2)), {}, "masks must be"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), {"num_samples": 0}, "positive"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), {"seed": -1}, "seed"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)),
     {"seed": 1, "z": np.zeros((1, 2, 8, 8, 1))}, "either seed or z"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), {"z": np.zeros((1, 2, 8, 9, 1))},
     "z must be"),
])
def test_bad_inputs_say_what_is_expected(inpainter, images, masks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        inpainter.sample(images, masks, **kwargs)


def test_oversized_request_is_refused_before_any_work(inpainter, monkeypatch):
    images, masks = random_inputs(batch=1, hw=(16, 16))
    calls = []
    monkeypatch.setattr(inpainter, "_sample_fn", lambda *a: calls.append(a))
    monkeypatch.setattr(inpainter, "max_pixels", 3 * 16 * 16)
    with pytest.raises(ValueError, match=r"1 image\(s\) x 4 samples x 16x16 = 1,024 .*"
                                         r"limit is 768 .*fewer samples per call"):
        inpainter.sample(images, masks, num_samples=4, seed=0)
    with pytest.raises(ValueError, match="Inpainter.max_pixels"):
        inpainter.sample(images, masks, z=np.zeros((1, 4, 16, 16, 1), np.float32))
    assert calls == []
    # A million samples of a 128x128 image under the default limit: refused, not OOM-killed.
    monkeypatch.undo()
    big = np.zeros((128, 128, 3), np.uint8)
    with pytest.raises(ValueError, match="1,000,000 samples"):
        inpainter.sample(big, np.ones((128, 128), np.uint8), num_samples=10**6, seed=0)


@pytest.mark.parametrize("image_shape, mask_shape, message", [
    ((8, 8, 3), (1, 8, 8, 1), "images must be uint8 RGB"),
    ((1, 8, 8, 4), (1, 8, 8, 1), "images must be uint8 RGB"),
    ((1, 8, 8, 3), (1, 8, 8), "masks must be uint8"),
    ((1, 8, 8, 3), (1, 8, 9, 1), "match the images in height and width"),
    ((3, 8, 8, 3), (2, 8, 8, 1), "one per image"),
    ((0, 8, 8, 3), (0, 8, 8, 1), "at least one image"),
])
def test_graph_checks_raise_invalid_argument(inpainter, image_shape, mask_shape, message):
    """The checks that protect the serving signature, run through the live module."""
    images, masks = tf.zeros(image_shape, tf.uint8), tf.zeros(mask_shape, tf.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        inpainter.module.sample(images, masks, tf.constant(2), tf.constant(0))


def test_latest_checkpoint_dir_picks_most_recent(tmp_path):
    assert latest_checkpoint_dir(tmp_path / "missing") is None
    assert latest_checkpoint_dir(tmp_path) is None
    for i, name in enumerate(["a", "nested/b", "c"]):
        d = tmp_path / name
        d.mkdir(parents=True)
        tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(d / "ckpt-1"))
        (d / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
        os.utime(d / "checkpoint", (1000 + i, 1000 + i))
    os.utime(tmp_path / "nested/b/checkpoint", (5000, 5000))
    assert latest_checkpoint_dir(tmp_path) == tmp_path / "nested/b"
    (tmp_path / "stale").mkdir()  # an index pointing at nothing is ignored
    (tmp_path / "stale/checkpoint").write_text('model_checkpoint_path: "ckpt-9"\n')
    assert latest_checkpoint_dir(tmp_path) == tmp_path / "nested/b"


def test_missing_checkpoint_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setattr("piigan_tf.loading.PRETRAINED_DIR", tmp_path / "no_pretrained")
    with pytest.raises(CheckpointNotFoundError, match="python train.py --preset quick"):
        Inpainter.from_checkpoint(root=tmp_path)
    with pytest.raises(CheckpointNotFoundError, match="train"):
        Inpainter.from_checkpoint(tmp_path / "nowhere")


def test_checkpoint_without_generator_is_refused(tmp_path):
    tf.train.CheckpointManager(tf.train.Checkpoint(other=tf.Variable(1.0)), str(tmp_path),
                               1).save()
    with pytest.raises(RuntimeError, match="generator"):
        load_generator(tmp_path)


def test_checkpoint_restores_trained_weights(checkpoints, inpainter):
    """The loaded generator holds the checkpoint's values, not a fresh init."""
    generator, config, path = load_generator(checkpoints / "sample/ckpt-1")  # one checkpoint
    assert path.endswith("ckpt-1") and config.img_hw == (32, 32)
    reader = tf.train.load_checkpoint(str(checkpoints / "sample"))
    stored = {reader.get_tensor(k).tobytes() for k in reader.get_variable_to_shape_map()
              if k.endswith("VARIABLE_VALUE")}
    for v in generator.weights:
        assert v.numpy().tobytes() in stored, f"{v.path} not restored"


# --------------------------------------------------------------------- CLI
def load_cli():
    spec = importlib.util.spec_from_file_location("piigan_test_cli", ROOT / "test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_png(path):
    import cv2

    image = cv2.imread(str(path))
    assert image is not None, f"{path} missing or unreadable"
    return image[:, :, ::-1]


def test_cli_defaults_after_quickstart(checkpoints, tmp_path, monkeypatch, capsys):
    """`python test.py --num_samples 3` with nothing else, as after the quickstart."""
    monkeypatch.chdir(tmp_path)
    os.symlink(checkpoints, tmp_path / "checkpoints")
    cli = load_cli()
    assert cli.main(["--num_samples", "3", "--seed", "5", "--no_progress"]) == 0
    grid = read_png(tmp_path / "outputs/samples.png")
    # 4 sample-set images cropped to the tiny preset's 32x32; 2 px white separators.
    assert grid.shape == (4 * 32 + 3 * 2, 5 * 32 + 4 * 2, 3)
    masked = grid[:32, 34:66]
    assert (masked[8:24, 8:24] == 255).all()  # the 16x16 centre hole, white
    assert "seed 5" in capsys.readouterr().out


def test_cli_image_mask_and_output_dir(checkpoints, tmp_path, capsys):
    import cv2

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "odd.png"), rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    mask = np.zeros((10, 10), np.uint8)
    mask[3:7, 3:7] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    cli = load_cli()
    rc = cli.main(["--image", str(tmp_path / "odd.png"), "--mask", str(tmp_path / "mask.png"),
                   "--num_samples", "2", "--checkpoint_dir", str(checkpoints / "sample"),
                   "--output", str(tmp_path / "grid.png"), "--output_dir", str(tmp_path / "s")])
    assert rc == 0
    sample = read_png(tmp_path / "s/odd_sample01.png")
    original = read_png(tmp_path / "odd.png")
    assert sample.shape == (37, 53, 3)  # not cropped to a multiple of 8
    hole = cv2.resize(mask, (53, 37), interpolation=cv2.INTER_NEAREST) > 127
    np.testing.assert_array_equal(sample[~hole], original[~hole])
    assert read_png(tmp_path / "grid.png").shape == (37, 4 * 53 + 3 * 2, 3)


def hole_in_the_middle(hw=(64, 80)):
    mask = np.zeros((*hw, 1), np.uint8)
    mask[hw[0] // 2 - 12:hw[0] // 2 + 12, hw[1] // 2 - 12:hw[1] // 2 + 12] = 255
    return mask


def test_attention_offsets_point_away_from_the_hole_only(inpainter):
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (2, 64, 80, 3), dtype=np.uint8)
    masks = hole_in_the_middle()[None]  # one for both
    samples, offsets = inpainter.attention_offsets(images, masks, seed=3, first_image=1)
    assert offsets.shape == (2, 8, 10, 2) and offsets.dtype == np.int32  # one per 8x8 cell
    # The sample the offsets belong to is sample 0 of the same request.
    np.testing.assert_array_equal(
        samples, inpainter.sample(images, masks, 2, seed=3, first_image=1)[:, 0])
    # A known patch away from the hole matches itself best (Cauchy-Schwarz);
    # a hole position may not copy from the hole, so it points elsewhere.
    assert (offsets[:, 0, 0] == 0).all() and (offsets[:, -1, -1] == 0).all()
    assert (np.abs(offsets[:, 4, 5]).sum(-1) > 0).all()
    _, odd = inpainter.attention_offsets(images[:1, :30, :37], masks[:, :30, :37], seed=3)
    assert odd.shape == (1, 4, 5, 2)  # the image padded to 32 x 40
    saved_model_like = Inpainter(inpainter._sample_fn, inpainter._noise_fn)  # no generator
    with pytest.raises(ValueError, match="from_checkpoint"):
        saved_model_like.attention_offsets(images, masks, seed=3)


def test_cli_show_flow_writes_the_offsets_of_each_first_sample(checkpoints, tmp_path, capsys):
    import cv2

    rng = np.random.default_rng(5)
    cv2.imwrite(str(tmp_path / "photo.png"), rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "mask.png"), hole_in_the_middle())
    rc = load_cli().main([
        "--image", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"),
        "--num_samples", "2", "--seed", "7", "--zoom", "2", "--show_flow",
        "--checkpoint_dir", str(checkpoints / "sample"), "--output", str(tmp_path / "grid.png"),
        "--output_dir", str(tmp_path / "s")])
    assert rc == 0 and f"{tmp_path / 'grid_flow.png'}" in capsys.readouterr().out
    flow_grid = read_png(tmp_path / "grid_flow.png")
    assert flow_grid.shape == (2 * 64, 2 * 2 * 80 + 2, 3)  # first sample | offsets, zoomed
    sample, flow = flow_grid[:, :160], flow_grid[:, 162:]
    np.testing.assert_array_equal(sample[::2, ::2], read_png(tmp_path / "s/photo_sample00.png"))
    np.testing.assert_array_equal(flow[::2, ::2], read_png(tmp_path / "s/photo_flow.png"))
    flow = flow[::2, ::2]
    assert len(np.unique(flow.reshape(-1, 3), axis=0)) > 2  # several directions, not one colour
    assert (flow[:8, :8] == 0).all() and (flow[-8:, -8:] == 0).all()  # corners: no offset, black
    assert flow[28:36, 36:44].max() > 0  # the hole's centre copies from elsewhere: coloured


def test_cli_show_flow_needs_the_generator(tmp_path, capsys, monkeypatch):
    cli = load_cli()
    # test.py's main is piigan_tf.cli.sample's: its model loader is patched there.
    monkeypatch.setattr("piigan_tf.cli.sample.load_inpainter", lambda args: Inpainter(None, None))
    assert cli.main(["--show_flow", "--saved_model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--show_flow needs the generator's weights" in err and "Traceback" not in err


def test_cli_plan_splits_calls_under_max_pixels():
    from piigan_tf.sampling import RequestError, plan_calls  # test.py's planning

    images = [(f"a{i}", np.zeros((16, 16, 3), np.uint8)) for i in range(5)]
    images.append(("big", np.zeros((32, 16, 3), np.uint8)))
    # Everything fits: one call per run of equal-sized images, all samples.
    assert plan_calls(images, 4, 3, 10**6) == [(0, 4, 0, 3), (4, 5, 0, 3), (5, 6, 0, 3)]
    # 8 samples of 16x16 per call: 2 images of 3 samples a call, then 4 of the big one.
    assert plan_calls(images, 4, 3, 8 * 256) == [
        (0, 2, 0, 3), (2, 4, 0, 3), (4, 5, 0, 3), (5, 6, 0, 3)]
    # Fewer per call than asked: by samples, every index covered once, in order.
    calls = plan_calls(images, 4, 10, 4 * 256)
    for i in range(5):
        mine = [(first, count) for start, stop, first, count in calls if start == i]
        assert [f for f, _ in mine] == [0, 4, 8] and sum(c for _, c in mine) == 10
    assert [(f, c) for s, _, f, c in calls if s == 5] == [(i, 2) for i in range(0, 10, 2)]
    assert all(stop - start == 1 for start, stop, first, count in calls)
    with pytest.raises(RequestError, match="--size"):
        plan_calls(images, 4, 1, 255)


def test_cli_splits_an_oversized_request_into_calls(checkpoints, tmp_path, monkeypatch):
    from piigan_tf.inference import Inpainter

    calls = []
    original = Inpainter.sample

    def counted(self, images, masks, num_samples, seed=None, **kw):
        calls.append((len(images), num_samples))
        return original(self, images, masks, num_samples, seed=seed, **kw)

    monkeypatch.setattr(Inpainter, "max_pixels", 5 * 32 * 32)
    monkeypatch.setattr(Inpainter, "sample", counted)
    args = ["--num_samples", "12", "--num_images", "2", "--seed", "1", "--no_progress",
            "--checkpoint_dir", str(checkpoints / "sample"), "--output", str(tmp_path / "g.png"),
            "--output_dir", str(tmp_path / "s")]
    assert load_cli().main(args) == 0
    assert calls == [(1, 5), (1, 5), (1, 2)] * 2  # within the limit, every sample once
    assert read_png(tmp_path / "g.png").shape == (2 * 32 + 2, 14 * 32 + 13 * 2, 3)
    names = sorted(p.name for p in (tmp_path / "s").glob("*_sample*.png"))
    stems = sorted({n.split("_sample")[0] for n in names})
    assert len(stems) == 2
    assert names == sorted(f"{s}_sample{j:02d}.png" for s in stems for j in range(12))
    # Split or not, the same samples: the same noise, but a pass of another
    # batch size may round a value of a pixel the other way now and then
    # (TensorFlow's own CPU kernels, oneDNN off): at most one level, rarely.
    monkeypatch.setattr(Inpainter, "max_pixels", 2**23)
    args[args.index(str(tmp_path / "s"))] = str(tmp_path / "whole")
    assert load_cli().main(args) == 0 and calls[6:] == [(2, 12)]
    assert_same_but_rare_rounding(np.stack([read_png(tmp_path / "s" / name) for name in names]),
                                  np.stack([read_png(tmp_path / "whole" / name) for name in names]))


def test_cli_seed_gives_the_same_samples_for_any_batch_size(checkpoints, tmp_path):
    import cv2

    rng = np.random.default_rng(3)
    (tmp_path / "in").mkdir()
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"in/im{i}.png"), rng.integers(0, 256, (24, 20, 3), np.uint8))
    outputs = {}
    for batch_size in (1, 4):
        out = tmp_path / f"b{batch_size}"
        assert load_cli().main(["--image", str(tmp_path / "in"), "--num_samples", "3",
                                "--seed", "9", "--mask_type", "free_form", "--batch_size",
                                str(batch_size), "--checkpoint_dir", str(checkpoints / "sample"),
                                "--output", "", "--output_dir", str(out), "--no_progress"]) == 0
        outputs[batch_size] = {p.name: read_png(p) for p in sorted(out.glob("*.png"))}
    assert len(outputs[1]) == 5 * 4 and outputs[1].keys() == outputs[4].keys()
    for name, image in outputs[1].items():
        np.testing.assert_array_equal(image, outputs[4][name], err_msg=name)


def test_cli_refuses_a_grid_too_large_to_build_and_names_the_fix(checkpoints, capsys):
    args = ["--num_samples", "100000000", "--checkpoint_dir", str(checkpoints / "sample")]
    assert load_cli().main(args) == 2
    err = capsys.readouterr().err
    assert "--output '' --output_dir" in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--image", "{tmp}/notes.png"], "not a readable image"),
    (["--image", "{tmp}/nothing_here"], "no such file or folder"),
    (["--mask", "{tmp}/notes.png"], "cannot read mask"),
    (["--num_samples", "0"], "at least 1"),
    (["--saved_model", "{tmp}"], "export.py"),
])
def test_cli_errors_are_messages(checkpoints, tmp_path, capsys, args, message):
    (tmp_path / "notes.png").write_text("not an image")
    args = [a.format(tmp=tmp_path) for a in args]
    if "--saved_model" not in args:
        args += ["--checkpoint_dir", str(checkpoints / "sample")]
    assert load_cli().main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_without_checkpoint_says_train_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("piigan_tf.loading.PRETRAINED_DIR", tmp_path / "no_pretrained")
    assert load_cli().main(["--num_samples", "10"]) == 2
    err = capsys.readouterr().err
    assert "python train.py --preset quick" in err and "Traceback" not in err


def test_images_far_larger_than_a_resized_model_saw_get_a_note():
    from piigan_tf.sampling import scale_notes

    config = load_config(preset="celeba64")  # whole faces resized to 64x64
    images = [("face.jpg", np.zeros((218, 178, 3), np.uint8)),
              ("small.png", np.zeros((64, 64, 3), np.uint8)),
              ("wide.png", np.zeros((100, 130, 3), np.uint8))]
    notes = scale_notes(images, config)
    assert len(notes) == 2
    assert notes[0].startswith("note: face.jpg is 218x178") and "--size 64 64" in notes[0]
    assert notes[1].startswith("note: wide.png is 100x130")
    # A model trained on crops at native scale takes large images as they are.
    assert scale_notes(images, config.replace(RANDOM_CROP=True)) == []
    assert scale_notes(images, None) == []
