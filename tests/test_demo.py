"""The demo (demo.py, piigan_tf.demo): its helpers, then the page in a real browser.

The server runs as a subprocess on 127.0.0.1 with a tiny random-weights
checkpoint; the browser is the system Chromium driven by Playwright
(tests/demo_browser.py). The browser test is skipped, with the reason, where
Chromium or Playwright is missing; CI installs both (.ci/run).
"""

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from demo_browser import (browser_page, chromium_path, demo_server, fetch_png,  # noqa: E402
                          inpaint, paint_stroke, set_samples, upload)
from piigan_tf import demo  # noqa: E402

pytest.importorskip("gradio", reason="gradio is not installed (pip install -r requirements.txt)")


def write_png(path: Path, image: np.ndarray) -> Path:
    import cv2

    assert cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def test_image(hw=(40, 48)) -> np.ndarray:
    """A smooth RGB image without pure white, so a white pixel in the masked input is hole."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:hw[0], :hw[1]]
    base = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1) % 200
    return (base + rng.integers(0, 40, (*hw, 3))).astype(np.uint8)


test_image.__test__ = False  # a helper, not a test


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory, write_checkpoint):
    return write_checkpoint(tmp_path_factory.mktemp("demo_checkpoints") / "tiny")


@pytest.fixture(scope="module")
def inpainter(checkpoint_dir):
    return demo.load_model(checkpoint_dir)[0]


def test_load_model_falls_back_to_pretrained_then_says_how_to_train(
        tmp_path, checkpoint_dir, monkeypatch):
    from piigan_tf import loading, pretrained

    monkeypatch.setattr(loading, "PRETRAINED_DIR", tmp_path / "absent")
    none, note = demo.load_model(root=tmp_path / "none")
    assert none is None and "python train.py --preset quick" in note
    found, _ = demo.load_model(root=checkpoint_dir.parent)
    assert str(checkpoint_dir) in found.source
    shipped = tmp_path / "celeba64"
    pretrained.make_model_folder(checkpoint_dir, shipped)
    monkeypatch.setattr(loading, "PRETRAINED_DIR", shipped)
    found, note = demo.load_model(root=tmp_path / "none")
    assert str(shipped) in found.source and str(shipped) in note


def test_examples_fit_the_model(tmp_path):
    from piigan_tf.config import load_config

    def names(preset):
        return [Path(p).stem for p in demo.write_examples(tmp_path / preset, load_config(preset=preset))]

    assert names("celeba64") == ["astronaut_face", "astronaut_face_whole"]  # faces only
    assert names("mauflex128") == ["grass", "gravel", "grass_whole", "gravel_whole"]
    other = names("quick")
    assert other[-2:] == ["chelsea", "coffee"] and "astronaut_face" not in other


def test_model_shelf_offers_the_shipped_folders_and_loads_on_first_use(
        tmp_path, checkpoint_dir, inpainter):
    from piigan_tf import pretrained

    shipped = tmp_path / "pretrained"
    for name in ("b_model", "a_model"):
        pretrained.make_model_folder(checkpoint_dir, shipped / name)
    (shipped / "empty").mkdir()  # no weights: not a model folder
    from piigan_tf.loading import shipped_model_dirs

    assert [p.name for p in shipped_model_dirs(shipped)] == ["a_model", "b_model"]
    shelf = demo.ModelShelf.with_shipped(inpainter, root=shipped)
    assert shelf.default == demo._display_path(inpainter.source)
    assert shelf.labels == [shelf.default, str(shipped / "a_model"), str(shipped / "b_model")]
    assert shelf.get(shelf.default) is inpainter
    loaded = shelf.get(str(shipped / "a_model"))
    assert loaded is not inpainter and loaded is shelf.get(str(shipped / "a_model"))  # cached
    assert str(shipped / "a_model") in loaded.source
    with pytest.raises(demo.DemoError, match="choose one of"):
        shelf.get("pretrained/none")
    # Started from a shipped folder: it is offered once, first.
    again = demo.ModelShelf.with_shipped(loaded, root=shipped)
    assert again.labels == [str(shipped / "a_model"), str(shipped / "b_model")]
    # A folder whose weights went missing after start: a message, not a traceback.
    (shipped / "b_model" / "generator.npz").unlink()
    with pytest.raises(demo.DemoError, match="generator.npz"):
        again.get(str(shipped / "b_model"))


def test_page_without_a_model_says_how_to_train(tmp_path, monkeypatch):
    import json

    from piigan_tf import loading

    monkeypatch.setattr(loading, "PRETRAINED_DIR", tmp_path / "absent")
    inpainter, note = demo.load_model(root=tmp_path / "none")
    app = demo.build_app(inpainter, note, demo.Outputs(tmp_path / "out"))
    page = json.dumps(app.config, default=str)  # (gr.State's config holds a callback)
    assert "python train.py --preset quick" in page and "No trained model" in page
    assert "astronaut_face.png" in page  # the bundled examples are there all the same


def test_editor_value_gives_image_and_painted_hole():
    image = test_image()
    layer = np.zeros((*image.shape[:2], 4), np.uint8)
    layer[5:9, 10:20] = (255, 0, 255, 255)
    rgba = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=-1)
    got, painted = demo.editor_inputs({"background": rgba, "layers": [layer], "composite": None})
    np.testing.assert_array_equal(got, image)
    assert painted.sum() == 40 and painted[5:9, 10:20].all()
    with pytest.raises(demo.DemoError, match="Upload an image"):
        demo.editor_inputs({"background": None, "layers": [], "composite": None})


@pytest.mark.parametrize("source", ["centre box", "random box", "free-form"])
def test_generated_holes_fit_any_size_and_follow_the_seed(inpainter, source):
    a = demo.hole_mask(source, (50, 70), None, inpainter.config, seed=3)
    b = demo.hole_mask(source, (50, 70), None, inpainter.config, seed=3)
    assert a.shape == (50, 70, 1) and a.dtype == np.uint8 and 0 < a.sum() // 255 < 50 * 70
    np.testing.assert_array_equal(a, b)
    assert demo.hole_mask(source, (1, 1), None, inpainter.config, seed=3).shape == (1, 1, 1)


def test_complete_uses_the_seed_rule_of_test_py(inpainter, tmp_path):
    image = test_image()
    painted = np.zeros(image.shape[:2], bool)
    painted[10:25, 12:30] = True
    out = demo.Outputs(tmp_path)
    first = demo.complete(inpainter, image, painted, "painted", 2, 11, out)
    again = demo.complete(inpainter, image, painted, "painted", 2, 11, out)
    expected = inpainter.sample(image, painted, num_samples=2, seed=11)[0]
    for path, want in zip(first["samples"] + again["samples"], list(expected) * 2):
        np.testing.assert_array_equal(_read(path), want)
    assert first["seed"] == 11 and "Seed 11" in first["message"]
    random = demo.complete(inpainter, image, painted, "painted", 1, None, out)
    assert 0 <= random["seed"] < 2**31 - 1 and f"Seed {random['seed']}" in random["message"]


def _read(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.mark.parametrize("hw, painted, n, seed, message", [
    ((40, 48), "none", 3, 0, "hole is empty"),
    ((40, 48), "top", 0, 0, "1 to 16"),
    ((40, 48), "top", 17, 0, "1 to 16"),
    ((40, 48), "top", 2, -1, "seed must be"),
    ((40, 48), "top", 2, 1.5, "seed must be"),
    ((3000, 3000), "all", 1, 0, "Inpainter.max_pixels"),  # all hole: one 3000x3000 window
])
def test_bad_requests_are_messages(inpainter, tmp_path, hw, painted, n, seed, message):
    image = np.full((*hw, 3), 90, np.uint8)
    mask = np.zeros(hw, bool)
    if painted == "top":
        mask[:2] = True
    elif painted == "all":
        mask[:] = True
    with pytest.raises(demo.DemoError, match=message):
        demo.complete(inpainter, image, mask, "painted", n, seed, demo.Outputs(tmp_path))


def test_tiny_and_fully_covered_images_work(inpainter, tmp_path):
    out = demo.Outputs(tmp_path)
    one = demo.complete(inpainter, np.full((1, 1, 3), 9, np.uint8), np.ones((1, 1), bool),
                        "painted", 2, 0, out)
    assert len(one["samples"]) == 2 and "whole image" in one["message"]
    with pytest.raises(demo.DemoError, match="No trained model"):
        demo.complete(None, test_image(), np.ones((40, 48), bool), "painted", 1, 0, out)


def test_non_image_file_is_a_message(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    with pytest.raises(demo.DemoError, match="notes.txt is not an image"):
        demo.read_image_file(path)


# ------------------------------------------------------------------ the page
@pytest.fixture(scope="module")
def server(checkpoint_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("demo_server") / "demo.log"
    with demo_server(["--checkpoint_dir", str(checkpoint_dir), "--output_dir",
                      str(log.parent / "outputs")], log) as url:
        yield url


def _need_browser():
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed (pip install -r requirements.txt)")
    if chromium_path() is None:
        pytest.skip("no Chromium: apt-get install chromium (or set PIIGAN_CHROMIUM)")


@pytest.mark.slow  # a demo server process (and a browser)
def test_page_paints_a_hole_and_shows_three_completions(server, tmp_path):
    _need_browser()
    image = test_image()
    src = write_png(tmp_path / "face.png", image)
    (tmp_path / "notes.txt").write_text("a text file, not an image\n")
    with browser_page(server) as page:
        upload(page, src)
        paint_stroke(page, [(0.40, 0.5), (0.50, 0.52), (0.60, 0.5)])
        set_samples(page, 3, seed=5)
        urls = inpaint(page, 3)
        page.wait_for_selector("#masked img")
        masked = fetch_png(page, page.get_attribute("#masked img", "src"))
        samples = [fetch_png(page, u) for u in urls]
        page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

        assert len(samples) == 3
        assert masked.shape == image.shape and all(s.shape == image.shape for s in samples)
        hole = (masked == 255).all(axis=-1)
        assert 0 < hole.sum() < hole.size / 2, f"painted hole of {hole.sum()} pixels"
        assert hole[20, 24], "the stroke through the centre is not in the hole"
        for s in samples:
            np.testing.assert_array_equal(s[~hole], image[~hole])
        for i in range(3):
            for j in range(i + 1, 3):
                assert np.any(samples[i][hole] != samples[j][hole]), (i, j)
        assert "Seed 5" in page.inner_text("#status")

        # A file that is not an image: a readable message, and the page goes on serving.
        page.set_input_files("#file-upload input[type=file]", str(tmp_path / "notes.txt"))
        page.get_by_text("notes.txt is not an image").first.wait_for(timeout=60_000)
        page.get_by_label("centre box").check()
        set_samples(page, 2, seed=6)
        assert len(inpaint(page, 2)) == 2
        assert "centre box" in page.inner_text("#status")


@pytest.mark.slow  # a demo server process (and a browser)
def test_gradio_client_calls_the_same_endpoint(server, tmp_path):
    from gradio_client import Client, handle_file

    image = test_image()
    layer = np.zeros((*image.shape[:2], 4), np.uint8)
    layer[12:26, 16:34] = (255, 0, 255, 255)
    bg = write_png(tmp_path / "image.png", image)
    import cv2

    cv2.imwrite(str(tmp_path / "layer.png"), layer[:, :, [2, 1, 0, 3]])
    client = Client(server, verbose=False, download_files=str(tmp_path / "downloads"))
    editor = {"background": handle_file(str(bg)), "layers": [handle_file(str(tmp_path / "layer.png"))],
              "composite": None}
    masked, gallery, seed, message = client.predict(editor, "painted", 3, 9, api_name="/inpaint")
    assert seed == 9 and "Seed 9" in message and len(gallery) == 3
    hole = layer[:, :, 3] > 0
    samples = [_read(item["image"]) for item in gallery]
    for s in samples:
        np.testing.assert_array_equal(s[~hole], image[~hole])
    assert np.any(samples[0][hole] != samples[1][hole])
    np.testing.assert_array_equal(_read(masked)[hole], 255)

    (tmp_path / "notes.txt").write_text("not an image\n")
    with pytest.raises(Exception, match="not an image"):
        client.predict({"background": handle_file(str(tmp_path / "notes.txt")), "layers": [],
                        "composite": None}, "painted", 1, 0, api_name="/inpaint")


def test_model_menu_switches_the_model_and_its_examples(server, tmp_path):
    """Through the API as the page does: /switch_model, then /inpaint uses that model."""
    from gradio_client import Client, handle_file

    image = test_image()
    bg = write_png(tmp_path / "image.png", image)
    editor = {"background": handle_file(str(bg)), "layers": [], "composite": None}
    client = Client(server, verbose=False, download_files=str(tmp_path / "downloads"))
    before = client.predict(editor, "centre box", 2, 4, api_name="/inpaint")[1]
    header, examples, status = client.predict("pretrained/celeba64", api_name="/switch_model")
    assert "pretrained/celeba64" in header and "trained at 64×64" in header
    assert "Switched to `pretrained/celeba64`" in status
    names = [Path(str(row[0] if isinstance(row, list) else row)).stem
             for row in (examples.get("samples") if isinstance(examples, dict) else examples)]
    assert "astronaut_face" in str(names) and "coffee" not in str(names)
    face = client.predict(editor, "centre box", 2, 4, api_name="/inpaint")[1]
    first = [_read(item["image"]) for item in before]
    after = [_read(item["image"]) for item in face]
    assert any(np.any(a != b) for a, b in zip(first, after))  # another model, same seed
    with pytest.raises(Exception, match="not in the list of choices"):  # Gradio checks the menu
        client.predict("pretrained/none", api_name="/switch_model")
