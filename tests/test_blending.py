"""Compositing the generated pixels with the known ones (piigan_tf.blending, --blend)."""

import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf import metrics as M  # noqa: E402
from piigan_tf.blending import BLENDS, check_blend, poisson_blend  # noqa: E402
from piigan_tf.inference import Inpainter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def membrane_by_direct_solve(difference, hole):
    """The harmonic d on ``hole`` with d = difference on the known pixels next to
    it and a zero-gradient image edge, by a dense solve (small holes only)."""
    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    index = {(y, x): k for k, (y, x) in enumerate(zip(ys, xs))}
    a = np.zeros((len(ys), len(ys)))
    b = np.zeros((len(ys), difference.shape[-1]))
    for k, (y, x) in enumerate(zip(ys, xs)):
        for yy, xx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
            if not (0 <= yy < h and 0 <= xx < w):
                continue
            a[k, k] += 1
            if hole[yy, xx]:
                a[k, index[(yy, xx)]] -= 1
            else:
                b[k] += difference[yy, xx]
    d = np.zeros_like(difference, dtype=np.float64)
    d[ys, xs] = np.linalg.solve(a, b)
    return d


def test_poisson_blend_is_the_membrane_solution():
    rng = np.random.default_rng(0)
    generated = rng.uniform(0, 255, (3, 24, 30, 3)).astype(np.float32)
    known = rng.uniform(0, 255, (3, 24, 30, 3)).astype(np.float32)
    hole = np.zeros((3, 24, 30, 1), bool)
    hole[0, 6:18, 8:20] = True                        # inside the image
    hole[1, 0:10, 20:30] = True                       # in a corner: the edge is a boundary
    hole[2, 3:8, 3:9] = hole[2, 12:22, 14:18] = True  # two holes
    out = poisson_blend(generated, known, hole).numpy()
    for i in range(3):
        h = hole[i, ..., 0]
        want = known[i].copy()
        want[h] = (generated[i] + membrane_by_direct_solve(known[i] - generated[i], h))[h]
        np.testing.assert_allclose(out[i], want, atol=0.05)
        np.testing.assert_array_equal(out[i][~h], known[i][~h])


def test_a_fill_off_by_a_constant_comes_back_as_the_truth():
    # A fill right up to a brightness offset: the membrane is that offset.
    rng = np.random.default_rng(1)
    truth = rng.uniform(40, 200, (2, 32, 32, 3)).astype(np.float32)
    hole = np.zeros((2, 32, 32, 1), np.float32)
    hole[:, 8:24, 10:26] = 1
    out = poisson_blend(truth + np.float32(30.0), truth, hole).numpy()
    np.testing.assert_allclose(out, truth, atol=0.02)


def test_texture_is_kept_and_the_seam_goes():
    # A real texture, the fill a different window of it 40 grey levels brighter.
    from skimage import data

    grass = data.grass().astype(np.float32)
    truth = np.repeat(grass[None, 100:164, 100:164, None], 3, axis=-1)
    fill = np.repeat(grass[None, 300:364, 300:364, None], 3, axis=-1) + 40.0
    hole = np.zeros((1, 64, 64, 1), np.float32)
    hole[:, 16:48, 16:48] = 1
    pasted = truth * (1 - hole) + fill * hole
    blended = poisson_blend(fill, truth, hole).numpy()
    mask = hole[0]

    def seam(x):
        return M.seam_ratio(*M.border_steps(np.clip(x, 0, 255), mask))

    assert seam(pasted) > 2 * seam(truth)
    print(seam(truth), seam(pasted), seam(blended))
    assert seam(blended) < 1.3 * seam(truth)
    # The fill's own detail is still there: total variation within 5 %.
    tv = [M.total_variation(np.clip(x, 0, 255), mask, within_hole=True)[0] for x in (fill, blended)]
    assert abs(tv[1] / tv[0] - 1) < 0.05


def test_each_image_is_blended_alone():
    rng = np.random.default_rng(2)
    generated = rng.uniform(0, 255, (3, 40, 40, 3)).astype(np.float32)
    known = rng.uniform(0, 255, (3, 40, 40, 3)).astype(np.float32)
    hole = np.zeros((3, 40, 40, 1), np.float32)
    hole[0, 10:30, 10:30] = 1
    hole[1, 0:6, 0:8] = 1     # other holes widen the box the batch is solved on
    hole[2, 30:40, 25:40] = 1
    together = poisson_blend(generated, known, hole).numpy()
    for i in range(3):
        alone = poisson_blend(generated[i:i + 1], known[i:i + 1], hole[i:i + 1]).numpy()
        np.testing.assert_array_equal(alone[0], together[i])


def test_no_hole_and_all_hole():
    generated = np.full((1, 8, 8, 3), 10.0, np.float32)
    known = np.full((1, 8, 8, 3), 200.0, np.float32)
    np.testing.assert_array_equal(poisson_blend(generated, known, np.zeros((1, 8, 8, 1))), known)
    # Nothing known to meet: the fill is left as generated.
    np.testing.assert_array_equal(poisson_blend(generated, known, np.ones((1, 8, 8, 1))),
                                  generated)


def test_check_blend_names_the_choices():
    assert check_blend("poisson") == "poisson"
    with pytest.raises(ValueError, match="paste, poisson"):
        check_blend("feather")


def test_cli_offers_exactly_the_blends():
    from piigan_tf.cli import demo, evaluate, export, sample

    from piigan_tf import config

    assert config.BLENDS == BLENDS  # the config's BLEND key takes the same
    for module in (sample, evaluate, export, demo):
        actions = {a.dest: a for a in module.build_parser()._actions}
        assert tuple(actions["blend"].choices) == BLENDS
        assert actions["blend"].default is None  # the model's own


# ------------------------------------------------------------- the product
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, write_checkpoint):
    return write_checkpoint(tmp_path_factory.mktemp("blend") / "sample")


def smooth_inputs():
    """Two 32x40 images (multiples of 8: no padding) with a hole each."""
    yy, xx = np.mgrid[0:32, 0:40]
    base = np.stack([60 + 3 * yy, 90 + 2 * xx, 120 + yy + xx], -1)
    images = np.stack([base, base[::-1]]).astype(np.uint8)
    masks = np.zeros((2, 32, 40, 1), np.uint8)
    masks[0, 8:24, 12:28] = 255
    masks[1, 0:12, 20:40] = 255
    return images, masks


def test_inpainter_poisson_is_the_generators_fill_blended(checkpoint):
    images, masks = smooth_inputs()
    paste = Inpainter.from_checkpoint(checkpoint)
    poisson = Inpainter.from_checkpoint(checkpoint, blend="poisson")
    assert (paste.blend, poisson.blend) == ("paste", "poisson")
    z = np.random.default_rng(3).standard_normal((2, 2, 32, 40, 1)).astype(np.float32)
    got = poisson.sample(images, masks, z=z)
    pasted = paste.sample(images, masks, z=z)
    hole = masks[..., 0] > 0
    # What the generator made, blended here by hand.
    generator = poisson.module.generator
    x = np.repeat(images, 2, axis=0).astype(np.float32) / 127.5 - 1
    m = np.repeat(hole, 2, axis=0)[..., None].astype(np.float32)
    _, refined = generator((x * (1 - m), m, z.reshape(4, 32, 40, 1)))
    want = poisson_blend((refined.numpy() + 1) * 127.5, (x + 1) * 127.5, m).numpy()
    want = np.clip(np.round(want), 0, 255).reshape(got.shape)
    assert np.abs(got.astype(int) - want).max() <= 1
    for b in range(2):
        for j in range(2):
            np.testing.assert_array_equal(got[b, j][~hole[b]], images[b][~hole[b]])
        # The fill moved: the random generator is far from these images.
        assert np.abs(got[b, 0].astype(int) - pasted[b, 0])[hole[b]].mean() > 5


class FlatGenerator:
    """A stand-in generator whose output is mid-grey everywhere."""

    weights = []

    def __call__(self, inputs, return_offsets=False):
        flat = tf.zeros_like(inputs[0])
        return flat, flat


def test_blending_a_flat_fill_into_a_ramp_gives_the_ramp_whole_and_in_windows(checkpoint):
    # A linear ramp is harmonic: the membrane from its border is the ramp itself.
    yy, xx = np.mgrid[0:64, 0:96]
    ramp = np.stack([30 + yy + xx, 50 + 2 * yy, 200 - xx], -1).astype(np.uint8)
    mask = np.zeros((64, 96, 1), np.uint8)
    mask[20:40, 56:80] = 1
    hole = mask[..., 0] > 0
    for blend, want in (("paste", np.full((int(hole.sum()), 3), 128)), ("poisson", ramp[hole])):
        inpainter = Inpainter.from_generator(FlatGenerator(), blend=blend)
        for window in (None, 32):  # whole; the hole's window only (the image is larger)
            got = inpainter.sample(ramp, mask, num_samples=2, seed=5, window=window)[0]
            for sample in got:
                np.testing.assert_array_equal(sample[~hole], ramp[~hole])
                np.testing.assert_array_equal(sample[hole], want)


def test_seeded_samples_reproduce(checkpoint):
    images, masks = smooth_inputs()
    poisson = Inpainter.from_checkpoint(checkpoint, blend="poisson")
    a = poisson.sample(images, masks, num_samples=2, seed=5)
    np.testing.assert_array_equal(a, poisson.sample(images, masks, num_samples=2, seed=5))
    np.testing.assert_array_equal(a[1:], poisson.sample(images[1:], masks[1:], num_samples=2,
                                                        seed=5, first_image=1))


def test_bad_blend_is_refused_before_loading(tmp_path):
    with pytest.raises(ValueError, match="blend must be one of"):
        Inpainter.from_checkpoint(tmp_path / "missing", blend="smooth")


def load_cli(name):
    spec = importlib.util.spec_from_file_location(f"piigan_{name}_cli", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_bakes_the_blend_in(checkpoint, tmp_path, capsys):
    images, masks = smooth_inputs()
    export_dir = tmp_path / "export"
    assert load_cli("export").main(["--checkpoint_dir", str(checkpoint), "--export_dir",
                                    str(export_dir), "--blend", "poisson"]) == 0
    assert json.loads((export_dir / "1/assets.extra/windows.json").read_text())["blend"] == "poisson"
    served = Inpainter.from_saved_model(export_dir)
    assert served.blend == "poisson"
    live = Inpainter.from_checkpoint(checkpoint, blend="poisson")
    a = served.sample(images, masks, num_samples=2, seed=7)
    b = live.sample(images, masks, num_samples=2, seed=7)
    assert np.abs(a.astype(int) - b).max() <= 1
    # Asking test.py for another rule than the graph's is an error naming the fix.
    out = tmp_path / "samples.png"
    rc = load_cli("test").main(["--saved_model", str(export_dir), "--blend", "paste",
                                "--output", str(out), "--num_samples", "2"])
    assert rc != 0 and not out.exists()
    err = capsys.readouterr().err
    assert "exported with --blend poisson" in err and "export it again with --blend paste" in err


def test_demo_serves_every_model_with_the_chosen_blend(checkpoint, tmp_path):
    from piigan_tf import demo, pretrained

    inpainter, note = demo.load_model(checkpoint, blend="poisson")
    assert inpainter.blend == "poisson" and "poisson" in note
    assert "poisson" not in demo.load_model(checkpoint)[1]
    shipped = tmp_path / "pretrained"
    pretrained.make_model_folder(checkpoint, shipped / "other")
    shelf = demo.ModelShelf.with_shipped(inpainter, root=shipped, blend="poisson")
    assert shelf.get(str(shipped / "other")).blend == "poisson"
    # Without --blend every model keeps its own (this one's config says paste).
    shelf = demo.ModelShelf.with_shipped(inpainter, root=shipped)
    assert shelf.get(str(shipped / "other")).blend == "paste"
    images, masks = smooth_inputs()
    result = demo.complete(inpainter, images[0], masks[0, ..., 0] > 0, "painted", 2, 3,
                           demo.Outputs(tmp_path / "out"))
    want = inpainter.sample(images[0], masks[0], num_samples=2, seed=3)[0]
    from PIL import Image
    np.testing.assert_array_equal(np.asarray(Image.open(result["samples"][1])), want[1])


def test_evaluation_says_which_blend_it_scored(checkpoint, tmp_path):
    from piigan_tf import evaluation as E

    images, masks = smooth_inputs()
    scores = {}
    for blend in ("paste", "poisson"):
        inpainter = Inpainter.from_checkpoint(checkpoint, blend=blend)
        result = E.evaluate(inpainter, images, masks, num_samples=2, baselines=(),
                            perceptual=False, progress=False)
        assert result.settings["blend"] == blend
        assert ("poisson" in result.labels[E.MODEL_KEY]) == (blend == "poisson")
        assert f"--blend {blend}" in E.markdown_report(result)
        scores[blend] = result.means[E.MODEL_KEY]
    # The same fills, moved to meet the known pixels: a smaller step at the border.
    assert scores["poisson"]["seam"] < scores["paste"]["seam"]


def test_a_saved_model_refuses_another_blend_than_its_own(checkpoint, tmp_path):
    from piigan_tf import demo
    from piigan_tf.export import export_saved_model

    path = export_saved_model(tmp_path / "export", checkpoint)  # paste, the default
    assert Inpainter.from_saved_model(path).blend == "paste"
    assert Inpainter.from_saved_model(path, blend="paste").blend == "paste"
    for load in (lambda: Inpainter.from_saved_model(path, blend="poisson"),
                 lambda: demo.load_model(saved_model=path, blend="poisson")):
        with pytest.raises(ValueError, match="exported with --blend paste; export it again"):
            load()


def test_test_py_blends_and_says_how_to_reproduce(checkpoint, tmp_path, capsys):
    import cv2

    images, masks = smooth_inputs()
    cv2.imwrite(str(tmp_path / "photo.png"), images[0][:, :, ::-1])
    cv2.imwrite(str(tmp_path / "hole.png"), masks[0, :, :, 0])
    written = {}
    for blend in ("paste", "poisson"):
        rc = load_cli("test").main(["--checkpoint_dir", str(checkpoint), "--image",
                                    str(tmp_path / "photo.png"), "--mask", str(tmp_path / "hole.png"),
                                    "--num_samples", "2", "--seed", "4", "--blend", blend,
                                    "--output", "", "--output_dir", str(tmp_path / blend),
                                    "--no_progress"])
        assert rc == 0
        assert ("--seed 4 --blend poisson reproduces" in capsys.readouterr().out) == (blend == "poisson")
        written[blend] = cv2.imread(str(tmp_path / blend / "photo_sample01.png"))[:, :, ::-1]
    want = Inpainter.from_checkpoint(checkpoint, blend="poisson").sample(
        images[0], masks[0], num_samples=2, seed=4)[0, 1]  # sample01: the second
    np.testing.assert_array_equal(written["poisson"], want)
    assert np.any(written["paste"] != written["poisson"])


def test_a_model_folder_names_its_own_blend(checkpoint, tmp_path):
    import shutil

    from piigan_tf.config import ConfigError, load_config
    from piigan_tf.export import export_saved_model

    folder = tmp_path / "model"
    shutil.copytree(checkpoint, folder)
    config_file = folder / "config.yml"
    assert load_config(config_file).BLEND == "paste"  # the default: the reference's rule
    config_file.write_text(config_file.read_text() + "BLEND: poisson\n")
    assert Inpainter.from_checkpoint(folder).blend == "poisson"
    assert Inpainter.from_checkpoint(folder, blend="paste").blend == "paste"  # asked for
    exported = export_saved_model(tmp_path / "export", folder)
    assert Inpainter.from_saved_model(exported).blend == "poisson"
    config_file.write_text(config_file.read_text().replace("BLEND: poisson", "BLEND: smooth"))
    with pytest.raises(ConfigError, match="BLEND must be one of paste, poisson"):
        load_config(config_file)
