"""What the running TensorFlow can do decides the conv path and --mixed_precision.

TF's own CPU kernels have no dilated conv gradient, and oneDNN takes
bfloat16 only on CPUs with AVX-512: a probe (``conv_gradient_error``) finds
out, and the dilated convs fall back to the phase form where it fails. The
tests run on any CPU: those that need the native path skip, naming the
probe's error, where it is absent; the fallback is forced here so that it
runs everywhere.
"""

import numpy as np
import pytest
import tensorflow as tf

from piigan_tf.distribute import MixedPrecisionUnavailable, resolve_mixed_precision
from piigan_tf.layers import fast_conv

UNSUPPORTED = "Current CPU implementations do not yet support dilation rates larger than 1."


@pytest.fixture
def probes(monkeypatch):
    """A fresh probe cache that a test may pre-fill (restored afterwards)."""
    table = {}
    monkeypatch.setattr(fast_conv, "_PROBES", table)
    return table


def _rand(shape, seed):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def _grads(x, k, d, dtype, native=None):
    x, k = tf.cast(x, dtype), tf.cast(k, dtype)
    with tf.GradientTape() as tape:
        tape.watch([x, k])
        y = fast_conv.dilated_conv2d(x, k, d, native=native)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * _rand(y.shape, 9))
    return [tf.cast(g, tf.float32).numpy() for g in tape.gradient(loss, [x, k])]


def _native_gradient_error(dtype):
    """What a native dilated conv gradient says when tried directly (None: it runs)."""
    try:
        _grads(_rand((1, 10, 10, 8), 1), _rand((3, 3, 8, 8), 2), 2, dtype, native=True)
    except (tf.errors.OpError, ValueError) as error:
        return str(error)
    return None


def test_probe_answers_and_caches(probes):
    for dtype in ("float32", "bfloat16"):
        assert fast_conv.conv_gradient_error(dtype, 1) is None  # plain conv gradients exist
        error = fast_conv.conv_gradient_error(dtype, 2)
        direct = _native_gradient_error(dtype)
        # The probe says what trying it says: both work, or both fail (and the
        # probe's answer is a message, not an empty string).
        assert (error is None) == (direct is None), (dtype, error, direct)
        assert error is None or (isinstance(error, str) and error)
    assert set(probes) == {("float32", 1), ("float32", 2), ("bfloat16", 1), ("bfloat16", 2)}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_native_dilated_gradient_equals_phase_form(dtype):
    error = fast_conv.conv_gradient_error(dtype, 2)
    if error is not None:
        pytest.skip(f"no native dilated {dtype} conv gradient in this TensorFlow: {error}")
    x, k = _rand((2, 16, 16, 8), 1), _rand((3, 3, 8, 8), 2)
    native = _grads(x, k, 2, dtype, native=True)
    phase = _grads(x, k, 2, dtype, native=False)
    tol = 1e-4 if dtype == "float32" else 3e-2
    for a, b in zip(native, phase):
        np.testing.assert_allclose(a, b, atol=tol * np.max(np.abs(b)))


def test_without_native_dilated_gradient_the_phase_form_runs(probes):
    """The fallback: dilation 2 on a 16x16 map (neither block grid nor native)."""
    probes[("bfloat16", 2)] = UNSUPPORTED
    assert not fast_conv.native_dilation_supported(tf.bfloat16)
    x, k = _rand((2, 16, 16, 8), 1), _rand((3, 3, 8, 8), 2)
    ops = tf.function(lambda x, k: fast_conv.dilated_conv2d(x, k, 2)).get_concrete_function(
        tf.TensorSpec(x.shape, tf.bfloat16), tf.TensorSpec(k.shape, tf.bfloat16)).graph
    convs = [op for op in ops.get_operations() if op.type == "Conv2D"]
    assert convs and all(op.get_attr("dilations") == [1, 1, 1, 1] for op in convs)
    got = _grads(x, k, 2, tf.bfloat16)
    with tf.GradientTape() as tape:  # float32 reference through TF's S2B dilated conv
        tape.watch([x, k])
        y = tf.nn.convolution(x, k, 1, "SAME", dilations=2)
        loss = tf.reduce_sum(y * _rand(y.shape, 9))
    for a, b in zip(got, tape.gradient(loss, [x, k])):
        assert np.linalg.norm(a - b) <= 3e-2 * np.linalg.norm(b)


def test_mixed_precision_train_step_on_the_fallback_path(probes):
    """What ``--mixed_precision`` runs where bfloat16 convs have no dilated gradient."""
    from piigan_tf.builders import build_piigan
    from piigan_tf.config import load_config
    from piigan_tf.data.noise import training_noise

    probes[("bfloat16", 2)] = UNSUPPORTED
    assert resolve_mixed_precision("bfloat16") == "bfloat16"
    config = load_config(preset="tiny", overrides={"D_STEPS": 1})
    model = build_piigan(config, "bfloat16")  # what train.py --mixed_precision builds
    k, b, (h, w), (bh, bw) = 2, config.BATCH_SIZE, config.img_hw, config.box_hw
    masks = np.zeros((k, b, h, w, 1), np.float32)
    masks[:, :, 8:24, 8:24] = 1
    data = {"images": tf.constant(np.random.default_rng(0).uniform(-1, 1, (k, b, h, w, 3)),
                                  tf.float32),
            "masks": tf.constant(masks),
            "boxes": tf.constant(np.tile(np.array([8, 8, bh, bw], np.int32), (k, b, 1)))}
    data.update(training_noise(tf.constant(3, tf.int64), k, b, (h, w), (bh, bw), seed=0))
    before = [np.asarray(v) for v in model.generator.trainable_variables]
    out = tf.function(model.train_step)(data)
    assert all(np.isfinite(float(v)) for v in out.values())
    after = [np.asarray(v) for v in model.generator.trainable_variables]
    assert any(np.any(a != b) for a, b in zip(after, before))


def test_mixed_precision_without_conv_gradients_is_refused_in_one_line(probes):
    probes[("float16", 1)] = "No registered 'Conv2DBackpropFilter' OpKernel for 'CPU' devices"
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the probe decides on CPU only")
    with pytest.raises(MixedPrecisionUnavailable) as info:
        resolve_mixed_precision("float16")
    message = str(info.value)
    assert "\n" not in message
    assert "float16" in message and "leave out --mixed_precision" in message


def test_train_py_stops_at_start_with_one_line(probes, capsys, tmp_path):
    import train

    probes[("bfloat16", 1)] = UNSUPPORTED
    code = train.main(["--preset", "tiny", "--mixed_precision", "bfloat16", "--no_progress",
                       "--checkpoint_dir", str(tmp_path / "c"), "--log_dir", str(tmp_path / "l")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --mixed_precision bfloat16: ") and "float32" in err[-1]
    assert not (tmp_path / "c").exists()
