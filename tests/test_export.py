"""SavedModel export for TF Serving (piigan_tf.serving, piigan_tf.export, export.py), at 32x32.

The exported model is checked the ways a server uses it: loaded in a fresh
process that imports only TensorFlow, and run by ``saved_model_cli`` (the
session-based loader, as ``tensorflow_model_server``'s). Both must give the
live model's numbers for the same seed.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.export import PYTHON_OPS, graph_op_types, next_version  # noqa: E402
from piigan_tf.inference import Inpainter  # noqa: E402
from piigan_tf.model import PiiGAN  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED, N = 11, 3


def load_export_cli():
    spec = importlib.util.spec_from_file_location("piigan_export_cli", ROOT / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny checkpoint (random weights) exported with the export.py CLI."""
    root = tmp_path_factory.mktemp("export")
    config = load_config(preset="tiny")
    model = PiiGAN.from_config_object(config)
    model.build()
    ckpt = root / "checkpoints/sample"
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(ckpt), 3).save(1)
    config.dump(ckpt / "config.yml")
    rc = load_export_cli().main(["--checkpoint_dir", str(ckpt),
                                 "--export_dir", str(root / "export/piigan")])
    assert rc == 0
    return root


@pytest.fixture(scope="module")
def inputs(workdir):
    """Two images of 30x37 (not multiples of 8) with per-image holes, saved as .npy."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 30, 37, 3), dtype=np.uint8)
    masks = np.zeros((2, 30, 37, 1), np.uint8)
    masks[0, 6:22, 9:30] = 255
    masks[1, 10:26, 3:20] = 1
    np.save(workdir / "images.npy", images)
    np.save(workdir / "masks.npy", masks)
    # The same as files, for the sample_bytes signature (masks white = hole).
    pngs = [tf.io.encode_png(im).numpy() for im in images]
    mask_pngs = [tf.io.encode_png((m > 0).astype(np.uint8) * 255).numpy() for m in masks]
    for name, data in (("image0.png", pngs[0]), ("image1.png", pngs[1]),
                       ("mask0.png", mask_pngs[0]), ("mask1.png", mask_pngs[1]),
                       ("image0.jpg", tf.io.encode_jpeg(images[0], quality=90).numpy())):
        (workdir / name).write_bytes(data)
    np.save(workdir / "images_bytes.npy", np.array(pngs, dtype=object).astype(bytes))
    np.save(workdir / "masks_bytes.npy", np.array(mask_pngs, dtype=object).astype(bytes))
    return images, masks


@pytest.fixture(scope="module")
def live(workdir, inputs):
    """Samples from the checkpoint (the live model) for SEED."""
    inpainter = Inpainter.from_checkpoint(workdir / "checkpoints/sample")
    return inpainter.sample(*inputs, num_samples=N, seed=SEED)


def test_versioned_layout(workdir):
    version = workdir / "export/piigan/1"
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    assert (version / "assets.extra/config.yml").is_file()
    assert next_version(workdir / "export/piigan") == 2
    assert not [p for p in (workdir / "export/piigan").iterdir() if p.name.startswith(".tmp")]


def test_next_version(tmp_path):
    assert next_version(tmp_path / "none") == 1
    for name in ("1", "7", "notes", "3"):
        (tmp_path / name).mkdir()
    assert next_version(tmp_path) == 8


def test_graph_has_only_core_ops(workdir):
    ops = graph_op_types(workdir / "export/piigan/1")
    assert not ops & PYTHON_OPS
    assert {"StatelessRandomNormalV2", "Conv2D", "Assert", "DecodeImage", "EncodePng"} <= ops
    # Every op is a registered core op (tensorflow_model_server has no custom ones).
    assert [op for op in ops if not hasattr(tf.raw_ops, op)] == []


def test_saved_model_matches_checkpoint_in_process(workdir, inputs, live):
    exported = Inpainter.from_saved_model(workdir / "export/piigan")  # base dir: latest version
    samples = exported.sample(*inputs, num_samples=N, seed=SEED)
    np.testing.assert_array_equal(samples, live)
    assert exported.config is not None and exported.config.img_hw == (32, 32)
    z = exported.noise(inputs[0], N, SEED)
    np.testing.assert_array_equal(exported.sample(*inputs, z=z), live)
    # The graph's own checks reach Python users as ValueError with the check's text.
    with pytest.raises(ValueError, match=r"^\[num_samples must be in 1\.\.64; got\] \[65\]"):
        exported.sample(*inputs, num_samples=65, seed=0)


FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf

path, work = sys.argv[1], sys.argv[2]
images, masks = np.load(work + "/images.npy"), np.load(work + "/masks.npy")
serve = tf.saved_model.load(path).signatures["serving_default"]
out = serve(images=tf.constant(images), masks=tf.constant(masks),
            num_samples=tf.constant({n}), seed=tf.constant({seed}))["completions"]
np.save(work + "/fresh.npy", out.numpy())
# TF Serving's REST "instances" format sends the scalars once per image.
batched = serve(images=tf.constant(images), masks=tf.constant(masks),
                num_samples=tf.constant([{n}, {n}]), seed=tf.constant([{seed}, {seed}]))
assert np.array_equal(batched["completions"].numpy(), out.numpy())
# seed < 0: a fresh random seed per request.
fresh = [serve(images=tf.constant(images), masks=tf.constant(masks), num_samples=tf.constant(1),
               seed=tf.constant(-1))["completions"].numpy() for _ in range(2)]
assert not np.array_equal(*fresh)
errors = {{}}
bad = {{
    "rank": dict(images=images[0], masks=masks),
    "channels": dict(images=np.concatenate([images, images[..., :1]], -1), masks=masks),
    "size": dict(images=images, masks=masks[:, :, :-1]),
    "num_samples": dict(images=images, masks=masks, num_samples=0),
    "seeds": dict(images=images, masks=masks, seed=np.array([1, 2], np.int32)),
}}
for name, kw in bad.items():
    kw = {{"num_samples": 1, "seed": 0, **kw}}
    try:
        serve(**{{k: tf.constant(v, tf.int32 if k in ("num_samples", "seed") else tf.uint8)
                 for k, v in kw.items()}})
    except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
# The encoded-image signature: PNG and JPEG files in, PNG files out.
encoded = tf.saved_model.load(path).signatures["sample_bytes"]
read = lambda name: open(work + "/" + name, "rb").read()
for image_files, out_name in ((["image0.png", "image1.png"], "fresh_png.npy"),
                              (["image0.jpg"], "fresh_jpg.npy")):
    pngs = encoded(images_bytes=tf.constant([read(f) for f in image_files]),
                   masks_bytes=tf.constant([read("mask0.png"), read("mask1.png")][:len(image_files)]),
                   num_samples=tf.constant({n}), seed=tf.constant({seed}))["completions_bytes"]
    assert pngs.dtype == tf.string and pngs.shape == (len(image_files), {n})
    np.save(work + "/" + out_name,
            np.stack([[tf.io.decode_png(p).numpy() for p in row] for row in pngs.numpy()]))
bad_bytes = {{"not_an_image": ([b"GIF89a? no, just text"], [read("mask0.png")]),
             "mask_size": ([read("image0.png")], [tf.io.encode_png(np.zeros((30, 36, 1), np.uint8)).numpy()]),
             "image_sizes": ([read("image0.png"), tf.io.encode_png(images[0, :-1]).numpy()],
                             [read("mask0.png")])}}
for name, (ib, mb) in bad_bytes.items():
    try:
        encoded(images_bytes=tf.constant(ib), masks_bytes=tf.constant(mb),
                num_samples=tf.constant(1), seed=tf.constant(0))
    except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
print(json.dumps({{"modules": sorted(m for m in sys.modules if m.startswith(("piigan", "keras"))),
                  "errors": errors}}))
"""


def test_fresh_process_with_only_tensorflow(workdir, inputs, live):
    script = FRESH_PROCESS.format(n=N, seed=SEED)
    result = subprocess.run([sys.executable, "-c", script, str(workdir / "export/piigan/1"),
                             str(workdir)], capture_output=True, text=True, timeout=300,
                            cwd=workdir, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not [m for m in report["modules"] if m.startswith("piigan")]
    np.testing.assert_array_equal(np.load(workdir / "fresh.npy"), live)
    errors = report["errors"]
    assert "images must be uint8 RGB of shape [batch, height, width, 3]" in errors["rank"]
    assert "images must be uint8 RGB" in errors["channels"]
    assert "masks must match the images in height and width" in errors["size"]
    assert "num_samples must be in 1..64" in errors["num_samples"]
    assert "seed must be a scalar" in errors["seeds"]
    # Encoded images: a PNG gives the arrays' samples; a JPEG those of its decoded pixels.
    np.testing.assert_array_equal(np.load(workdir / "fresh_png.npy"), live)
    jpeg_pixels = tf.io.decode_jpeg((workdir / "image0.jpg").read_bytes()).numpy()
    exported = Inpainter.from_saved_model(workdir / "export/piigan/1")
    np.testing.assert_array_equal(np.load(workdir / "fresh_jpg.npy"),
                                  exported.sample(jpeg_pixels, inputs[1][0], N, seed=SEED))
    assert "images_bytes[0] is not a PNG or JPEG file (21 bytes)" in errors["not_an_image"]
    assert "masks_bytes[0] is 30x36 (height x width) but the images are 30x37" in errors["mask_size"]
    assert "images_bytes[1] is 29x37 (height x width) but images_bytes[0] is 30x37" \
        in errors["image_sizes"]


def run_saved_model_cli(workdir, out_name, env=None, signature="serving_default",
                        inputs="images={work}/images.npy;masks={work}/masks.npy",
                        output="completions"):
    """``saved_model_cli run`` of a signature on the saved inputs; returns its output."""
    out = workdir / out_name
    cli = shutil.which("saved_model_cli")
    cli = [cli] if cli else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(
        [*cli, "run", "--dir", str(workdir / "export/piigan/1"),
         "--tag_set", "serve", "--signature_def", signature,
         "--inputs", inputs.format(work=workdir),
         "--input_exprs", f"num_samples={N};seed={SEED}",
         "--outdir", str(out), "--overwrite"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(out / f"{output}.npy", allow_pickle=True)


def test_saved_model_runs_on_tensorflows_own_cpu_kernels(workdir, inputs, live):
    """A server without oneDNN (TF's own CPU kernels) runs the exported graph too.

    The graph was traced with oneDNN on, so its dilated convs are native
    dilated Conv2D ops: TF's own CPU kernels run them forward. Only the
    rounding differs from the live model.
    """
    served = run_saved_model_cli(workdir, "cli_out_no_onednn",
                                 env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}).astype(int)
    assert served.shape == live.shape
    diff = np.abs(served - live.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05, (diff.max(), diff.mean())


def test_saved_model_cli_runs_signature(workdir, inputs, live):
    """saved_model_cli uses the TF1 session loader, as tensorflow_model_server does."""
    np.testing.assert_array_equal(run_saved_model_cli(workdir, "cli_out"), live)


def test_saved_model_cli_runs_the_bytes_signature(workdir, inputs, live):
    pngs = run_saved_model_cli(
        workdir, "cli_bytes", signature="sample_bytes", output="completions_bytes",
        inputs="images_bytes={work}/images_bytes.npy;masks_bytes={work}/masks_bytes.npy")
    assert pngs.shape == (2, N)
    np.testing.assert_array_equal(
        np.stack([[tf.io.decode_png(p).numpy() for p in row] for row in pngs]), live)


def test_same_seed_same_samples_alone_in_a_batch_for_any_n_and_signature(workdir, inputs, live):
    """The noise rule: sample j of image i depends on (seed, i, j) only."""
    images = np.concatenate([inputs[0], inputs[0][:1]])   # a batch of 3
    masks = np.concatenate([inputs[1], inputs[1][:1]])
    exported = Inpainter.from_saved_model(workdir / "export/piigan/1")
    ten = exported.sample(images, masks, 10, seed=SEED)    # the SavedModel, N = 10
    np.testing.assert_array_equal(ten[:2, :N], live)       # = checkpoint, batch of 2, N = 3
    assert not np.array_equal(ten[2], ten[0])  # the same image at another index: other noise
    alone = exported.sample(images[1], masks[1], N, seed=SEED, first_image=1)
    np.testing.assert_array_equal(alone[0], live[1])       # an image alone, at its index
    np.testing.assert_array_equal(
        exported.sample(images[1:], masks[1:], 4, seed=SEED, first_image=1, first_sample=6),
        ten[1:, 6:])
    encoded = tf.saved_model.load(str(workdir / "export/piigan/1")).signatures["sample_bytes"]
    pngs = encoded(images_bytes=tf.constant([(workdir / "image0.png").read_bytes()]),
                   masks_bytes=tf.constant([(workdir / "mask0.png").read_bytes()]),
                   num_samples=tf.constant(10), seed=tf.constant(SEED))["completions_bytes"]
    np.testing.assert_array_equal(
        np.stack([tf.io.decode_png(p).numpy() for p in pngs.numpy()[0]]), ten[0])


def test_export_cli_without_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("piigan_tf.loading.PRETRAINED_DIR", tmp_path / "no_pretrained")
    assert load_export_cli().main([]) == 2
    err = capsys.readouterr().err
    assert "python train.py --preset quick" in err and "Traceback" not in err


def test_export_refuses_existing_version(workdir, capsys):
    rc = load_export_cli().main(["--checkpoint_dir", str(workdir / "checkpoints/sample"),
                                 "--export_dir", str(workdir / "export/piigan"), "--version", "1"])
    assert rc == 2 and "already exists" in capsys.readouterr().err


def test_serving_doc_request_is_valid_json():
    """The README's REST request body parses and names the signature's inputs."""
    text = (ROOT / "README.md").read_text()
    body = text.split("```json", 1)[1].split("```", 1)[0]
    request = json.loads(body)
    assert set(request["inputs"]) == {"images", "masks", "num_samples", "seed"}
    assert "tensorflow_model_server --rest_api_port=8501" in text
