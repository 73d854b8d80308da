"""Reference (TF1) checkpoint -> piigan_tf checkpoint conversion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from piigan_tf.builders import build_piigan
from piigan_tf.config import load_config
from piigan_tf.convert import (
    COLOUR_INPUT_LAYERS, COLOUR_OUTPUT_LAYERS, CheckpointMismatchError,
    convert_reference_checkpoint, load_reference_weights, model_variables, port_name,
    reference_name, resolve_checkpoint, skip_category)

REPO = Path(__file__).resolve().parent.parent
GLOBAL_STEP = 1234

# Written by hand from the reference's model.py, so the mapping itself is tested.
KNOWN_REFERENCE_NAMES = {
    "inpaint_net/conv1/kernel": (5, 5, 6, 32),
    "inpaint_net/conv13_upsample/conv13_upsample_conv/kernel": (3, 3, 128, 64),
    "inpaint_net/allconv17/bias": (3,),
    "discriminator/discriminator_local/conv4/kernel": (5, 5, 256, 512),
    "discriminator/dout_local_fc/kernel": (512, 1),          # 16x16 box -> 1x1x512
    "discriminator/discriminator_global/conv1/bias": (64,),
    "discriminator/dout_global_fc/kernel": (1024, 1),        # 32x32 image -> 2x2x256
    "build_extractor/conv4/kernel": (5, 5, 256, 256),
    "build_extractor/z/kernel": (256, 256),                  # one z per pixel of 16x16
    "build_extractor/z_var/bias": (256,),
}
# Non-network entries a neuralgym checkpoint holds (one shared Adam, lr, step).
EXTRA_ENTRIES = {
    "inpaint_net/conv1/kernel/Adam": (5, 5, 6, 32),
    "inpaint_net/conv1/kernel/Adam_1": (5, 5, 6, 32),
    "discriminator/dout_local_fc/bias/Adam": (1,),
    "beta1_power": (),
    "beta2_power": (),
    "lr": (),
}


def write_reference_checkpoint(prefix: Path, values: dict[str, np.ndarray],
                               global_step: int | None = GLOBAL_STEP) -> str:
    """Writes a TF1 name-based checkpoint, as the reference's tf.train.Saver does."""
    with tf.Graph().as_default():
        for name, value in values.items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        if global_step is not None:
            tf.compat.v1.get_variable("global_step", dtype=tf.int32,
                                      initializer=tf.constant(global_step, tf.int32),
                                      trainable=False)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return tf.compat.v1.train.Saver().save(sess, str(prefix))


@pytest.fixture(scope="module")
def config():
    return load_config(preset="tiny")


@pytest.fixture(scope="module")
def spare_model(config):
    """A built model that tests load weights into (building one takes seconds)."""
    return build_piigan(config)


@pytest.fixture(scope="module")
def reference_values(spare_model):
    """Random values for every reference name of the tiny model, plus optimizer entries."""
    shapes = {name: tuple(v.shape) for vs in model_variables(spare_model).values()
              for name, v in vs.items()}
    for name, shape in KNOWN_REFERENCE_NAMES.items():
        assert shapes.get(name) == shape, name
    shapes.update(EXTRA_ENTRIES)
    rng = np.random.default_rng(0)
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in sorted(shapes.items())}


@pytest.fixture(scope="module")
def reference_checkpoint(tmp_path_factory, reference_values):
    return write_reference_checkpoint(tmp_path_factory.mktemp("ref") / "snap-1234",
                                      reference_values)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, reference_checkpoint, config):
    out = tmp_path_factory.mktemp("converted") / "celeba"
    return convert_reference_checkpoint(reference_checkpoint, out, config), out


def _network_values(values):
    return {n: v for n, v in values.items() if skip_category(n) is None}


def _expected_rgb(name, value):
    """The colour permutation, written out independently of convert._to_rgb."""
    layer, leaf = port_name(name).rsplit("/", 1)
    if layer in COLOUR_INPUT_LAYERS and leaf == "kernel":
        return np.concatenate([value[:, :, 2::-1], value[:, :, 3:]], axis=2)
    if layer in COLOUR_OUTPUT_LAYERS:
        return value[..., ::-1]
    return value


# -------------------------------------------------------------------- names
def test_reference_names_of_the_four_networks():
    assert reference_name("piigan/inpaint_net/conv13_upsample/conv13_upsample_conv/kernel") \
        == "inpaint_net/conv13_upsample/conv13_upsample_conv/kernel"
    assert reference_name("discriminator_local/dout_local_fc/kernel") \
        == "discriminator/dout_local_fc/kernel"
    assert reference_name("piigan/discriminator_global/conv3/bias") \
        == "discriminator/discriminator_global/conv3/bias"
    assert reference_name("piigan/discriminator_global/dout_global_fc/bias") \
        == "discriminator/dout_global_fc/bias"
    assert reference_name("build_extractor/z_var/bias") == "build_extractor/z_var/bias"
    with pytest.raises(ValueError, match="not a variable"):
        reference_name("piigan/noise_seed/seed_generator_state")


def test_port_name_inverts_reference_name(spare_model):
    paths = [v.path for vs in (spare_model.generator, spare_model.extractor,
                               spare_model.local_critic, spare_model.global_critic)
             for v in vs.variables]
    assert len(paths) == 116
    for path in paths:
        assert "piigan/" + port_name(reference_name(path)) == path
    assert port_name("discriminator/dout_global_fc/kernel") \
        == "discriminator_global/dout_global_fc/kernel"
    with pytest.raises(ValueError, match="not a reference network variable"):
        port_name("global_step")


def test_skip_categories():
    assert skip_category("inpaint_net/conv1/kernel") is None
    assert skip_category("inpaint_net/conv1/kernel/Adam_1") == "optimizer slots"
    assert skip_category("beta2_power_1") == "optimizer state"
    assert skip_category("global_step") == "step counter"
    assert skip_category("lr") == "learning rate"
    assert skip_category("static_view/0/foo") == "other"


# --------------------------------------------------------------- conversion
def test_converted_checkpoint_restores_every_weight(converted, reference_values, config,
                                                    spare_model):
    report, out = converted
    assert report["step"] == GLOBAL_STEP
    assert Path(report["output"]).name == f"ckpt-{GLOBAL_STEP}"
    nets = {"generator": spare_model.generator, "extractor": spare_model.extractor,
            "local_critic": spare_model.local_critic, "global_critic": spare_model.global_critic}
    assert report["loaded"] == {
        k: {"variables": len(m.variables), "parameters": m.count_params()} for k, m in nets.items()}
    assert report["loaded"]["generator"] == {"variables": 84, "parameters": 3_603_942}
    assert report["skipped"]["optimizer slots"] == sorted(
        n for n in EXTRA_ENTRIES if "/Adam" in n)
    assert report["skipped"]["step counter"] == ["global_step"]
    assert report["skipped"]["learning rate"] == ["lr"]
    assert not (report["missing"] or report["unexpected"] or report["mismatched"])
    assert yaml.safe_load((out / "config.yml").read_text())["IMG_SHAPES"] == [32, 32, 3]

    fresh = build_piigan(config)
    ckpt = tf.train.Checkpoint(model=fresh, g_optimizer=fresh.g_optimizer,
                               d_optimizer=fresh.d_optimizer)
    ckpt.restore(tf.train.latest_checkpoint(str(out))).assert_existing_objects_matched()
    restored = {n: v for vs in model_variables(fresh).values() for n, v in vs.items()}
    network = _network_values(reference_values)
    assert set(restored) == set(network)
    for name, value in network.items():
        np.testing.assert_array_equal(np.asarray(restored[name]),
                                      _expected_rgb(name, value), err_msg=name)
    # BGR -> RGB: the image channels of the first layers and the outputs are reversed.
    k = reference_values["inpaint_net/conv1/kernel"]
    got = np.asarray(restored["inpaint_net/conv1/kernel"])
    np.testing.assert_array_equal(got[:, :, 0], k[:, :, 2])
    np.testing.assert_array_equal(got[:, :, 3:], k[:, :, 3:])
    np.testing.assert_array_equal(np.asarray(restored["inpaint_net/allconv17/bias"]),
                                  reference_values["inpaint_net/allconv17/bias"][::-1])
    assert int(fresh.g_optimizer.iterations.numpy()) == GLOBAL_STEP
    assert int(fresh.d_optimizer.iterations.numpy()) == GLOBAL_STEP * config.D_STEPS


def test_model_only_restore(converted, reference_values, config):
    _, out = converted
    fresh = build_piigan(config)
    tf.train.Checkpoint(model=fresh).restore(
        tf.train.latest_checkpoint(str(out))).expect_partial()
    np.testing.assert_array_equal(
        np.asarray(fresh.local_critic.fc.kernel),
        reference_values["discriminator/dout_local_fc/kernel"])


def test_rgb_weights_compute_the_reference_function_on_rgb(reference_checkpoint, spare_model,
                                                           config):
    """f_rgb(x) == reverse(f_bgr(reverse(x))) for all four networks."""
    bgr = build_piigan(config)
    load_reference_weights(bgr, reference_checkpoint, bgr_to_rgb=False)
    rgb = spare_model
    load_reference_weights(rgb, reference_checkpoint)
    rev = lambda t: t[..., ::-1]  # noqa: E731
    h, w = config.img_hw
    bh, bw = config.box_hw
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (2, h, w, 3)).astype(np.float32)
    masks = np.zeros((2, h, w, 1), np.float32)
    masks[:, 8:24, 8:24] = 1
    z = rng.standard_normal((2, h, w, 1)).astype(np.float32)
    incomplete = images * (1 - masks)
    for a, b in zip(rgb.generator((incomplete, masks, z)),
                    bgr.generator((rev(incomplete), masks, z))):
        np.testing.assert_allclose(np.asarray(a), rev(np.asarray(b)), atol=1e-5)
    # Random N(0, 1) weights give huge activations: compare relative to their scale.
    def close(a, b):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())

    boxes = images[:, :bh, :bw]
    for a, b in zip(rgb.extractor(boxes), bgr.extractor(rev(boxes))):
        close(a, b)
    close(rgb.local_critic(boxes), bgr.local_critic(rev(boxes)))
    close(rgb.global_critic(images), bgr.global_critic(rev(images)))


def test_checkpoint_without_global_step_is_step_zero(tmp_path, reference_values, spare_model):
    prefix = write_reference_checkpoint(tmp_path / "model.ckpt",
                                        _network_values(reference_values), global_step=None)
    report = load_reference_weights(spare_model, prefix)
    assert report["step"] == 0 and "step counter" not in report["skipped"]


def test_resolve_checkpoint_forms(tmp_path, reference_checkpoint):
    prefix = Path(reference_checkpoint)
    assert resolve_checkpoint(prefix) == str(prefix)
    assert resolve_checkpoint(f"{prefix}.index") == str(prefix)
    data = next(prefix.parent.glob(prefix.name + ".data-*"))
    assert resolve_checkpoint(data) == str(prefix)
    assert resolve_checkpoint(prefix.parent) == str(prefix)  # via its `checkpoint` file
    # neuralgym writes absolute paths into `checkpoint`; a moved folder still resolves.
    moved = tmp_path / "downloaded"
    moved.mkdir()
    for f in prefix.parent.glob(prefix.name + ".*"):
        (moved / f.name).write_bytes(f.read_bytes())
    (moved / "checkpoint").write_text(
        'model_checkpoint_path: "/home/someone/model_logs/run/snap-1234"\n')
    assert resolve_checkpoint(moved) == str(moved / "snap-1234")
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_checkpoint(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no TensorFlow checkpoint"):
        resolve_checkpoint(tmp_path / "empty")


def test_refuses_to_overwrite_a_run(converted, reference_checkpoint, config):
    _, out = converted
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert_reference_checkpoint(reference_checkpoint, out, config)


def test_tf2_checkpoint_is_recognised(converted, spare_model):
    report, _ = converted
    with pytest.raises(FileNotFoundError, match="needs no conversion"):
        load_reference_weights(spare_model, report["output"])


# ---------------------------------------------------------------- mismatches
def _broken(values, missing=(), extra=None, reshape=None):
    values = dict(_network_values(values))
    for name in missing:
        del values[name]
    if extra:
        values[extra] = np.ones((3, 3), np.float32)
    if reshape:
        values[reshape] = np.ones((7, 1), np.float32)
    return values


@pytest.mark.parametrize("case", ["missing", "unexpected", "mismatched"])
def test_each_mismatch_is_named(case, tmp_path, reference_values, spare_model):
    name = {"missing": "inpaint_net/xconv5/bias",
            "unexpected": "inpaint_net/conv18/kernel",
            "mismatched": "discriminator/dout_global_fc/kernel"}[case]
    values = _broken(reference_values, missing=[name] if case == "missing" else (),
                     extra=name if case == "unexpected" else None,
                     reshape=name if case == "mismatched" else None)
    prefix = write_reference_checkpoint(tmp_path / "snap", values)
    with pytest.raises(CheckpointMismatchError, match=name) as info:
        load_reference_weights(spare_model, prefix)
    err = info.value
    assert isinstance(err, ValueError)
    got = {"missing": err.missing, "unexpected": err.unexpected,
           "mismatched": [n for n, _, _ in err.mismatched]}
    assert got == {k: ([name] if k == case else []) for k in got}
    if case == "mismatched":
        assert err.mismatched == [(name, (7, 1), (1024, 1))]
        assert "[7, 1] vs [1024, 1]" in str(err)


def test_all_mismatches_are_listed_at_once_and_partial_loads_the_rest(
        tmp_path, reference_values, spare_model):
    values = _broken(reference_values,
                     missing=["inpaint_net/conv1/kernel", "build_extractor/z/bias"],
                     extra="discriminator/discriminator_local/conv5/kernel",
                     reshape="discriminator/dout_local_fc/kernel")
    prefix = write_reference_checkpoint(tmp_path / "snap", values)
    with pytest.raises(CheckpointMismatchError) as info:
        load_reference_weights(spare_model, prefix)
    msg = str(info.value)
    for name in ("inpaint_net/conv1/kernel", "build_extractor/z/bias",
                 "discriminator/discriminator_local/conv5/kernel",
                 "discriminator/dout_local_fc/kernel"):
        assert name in msg
    assert "2 missing" in msg and "1 unexpected" in msg and "1 with a different shape" in msg

    before = np.asarray(spare_model.local_critic.fc.kernel).copy()
    report = load_reference_weights(spare_model, prefix, strict=False)
    assert report["missing"] == ["build_extractor/z/bias", "inpaint_net/conv1/kernel"]
    assert report["unexpected"] == ["discriminator/discriminator_local/conv5/kernel"]
    assert report["loaded"]["generator"]["variables"] == 83
    np.testing.assert_array_equal(np.asarray(spare_model.local_critic.fc.kernel), before)
    np.testing.assert_array_equal(np.asarray(spare_model.generator.get_layer("conv5").bias),
                                  reference_values["inpaint_net/conv5/bias"])


def test_wrong_size_suggests_the_checkpoint_size(tmp_path, reference_checkpoint):
    config = load_config(preset="quick")  # 64x64, box 32x32: the tiny checkpoint won't fit
    with pytest.raises(CheckpointMismatchError) as info:
        convert_reference_checkpoint(reference_checkpoint, tmp_path / "out", config)
    msg = str(info.value)
    assert "discriminator/dout_global_fc/kernel: [1024, 1] vs [4096, 1]" in msg
    assert "--set IMG_SHAPES=[32,32,3]" in msg and "--set HEIGHT=16 --set WIDTH=16" in msg
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------- CLI
def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "piigan_tf.cli.convert", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


def test_cli_help():
    r = _cli("--help")
    assert r.returncode == 0
    assert "--tf1_checkpoint" in r.stdout and "--output" in r.stdout


def test_cli_bad_path_exits_2_without_traceback(tmp_path):
    r = _cli("--tf1_checkpoint", str(tmp_path / "missing" / "snap-1"),
             "--output", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "error: reference checkpoint" in r.stderr and "not found" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_converts_and_mentions_the_extractor_activation(tmp_path, reference_checkpoint):
    r = _cli("--tf1_checkpoint", str(Path(reference_checkpoint).parent),
             "--output", str(tmp_path / "out"), "--set", "IMG_SHAPES=[32,32,3]",
             "--set", "HEIGHT=16", "--set", "WIDTH=16")
    assert r.returncode == 0, r.stderr
    assert f"ckpt-{GLOBAL_STEP}" in r.stdout and "EXTRACTOR_ACTIVATION=leaky_relu" in r.stdout
    assert (tmp_path / "out" / "config.yml").exists()
    # The same checkpoint at another size does not fit: exit 2, no traceback.
    r = _cli("--tf1_checkpoint", reference_checkpoint, "--output", str(tmp_path / "big"),
             "--set", "IMG_SHAPES=[64,64,3]", "--set", "HEIGHT=16", "--set", "WIDTH=16")
    assert r.returncode == 2
    assert "dout_global_fc/kernel: [1024, 1] vs [4096, 1]" in r.stderr
    assert "Traceback" not in r.stderr
