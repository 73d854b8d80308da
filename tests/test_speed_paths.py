"""The fast code paths compute what the plain (reference) formulations compute.

Covers the exact reformulations in ``piigan_tf.layers.fast_conv`` (dilated and
upsampling convs), the critic's leaky ReLU (no zero second-order pass in the
gradient penalty), a whole generator with fast paths on vs off, the XLA and
mixed-precision train steps, and the training-noise/batch-layout helpers of
distributed training.
"""

import numpy as np
import pytest
import tensorflow as tf

from piigan_tf import losses as L
from piigan_tf.config import load_config
from piigan_tf.data.noise import add_training_noise, training_noise
from piigan_tf.builders import build_optimizers
from piigan_tf.distribute import from_batch_major, resolve_mixed_precision, to_batch_major
from piigan_tf.layers.fast_conv import (DilatedConv2D, UpsampleConv2D, dilated_conv2d,
                                        native_dilation_supported, upsample_conv2d)
from piigan_tf.layers.ops import upsample2x
from piigan_tf.model import PiiGAN
from piigan_tf.networks import Generator, critics


def _rand(shape, seed):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def _value_and_grads(fn, x, k):
    with tf.GradientTape() as tape:
        tape.watch([x, k])
        y = fn(x, k)
        # A fixed random projection: every output element gets its own weight.
        loss = tf.reduce_sum(y * _rand(y.shape, 99))
    return y, tape.gradient(loss, [x, k])


def _assert_close(a, b, rtol=1e-5, atol=1e-5):
    scale = float(np.max(np.abs(b))) or 1.0
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol * scale)


# (H, W, dilation): 2x2 and 1x1 block grids (matmul forms), phase convs,
# sizes that are not multiples of the dilation, non-square maps.
DILATED_CASES = [(32, 32, 16), (16, 16, 8), (16, 16, 16), (8, 8, 32), (32, 32, 2),
                 (32, 32, 4), (32, 32, 8), (24, 40, 16), (12, 20, 5), (8, 24, 4), (20, 12, 16)]


@pytest.mark.parametrize("h,w,d", DILATED_CASES)
def test_dilated_conv_equals_tf_dilated_conv(h, w, d):
    x, k = _rand((2, h, w, 5), 1), _rand((3, 3, 5, 7), 2)
    plain = lambda x, k: tf.nn.convolution(x, k, 1, "SAME", dilations=d)  # noqa: E731
    fast = lambda x, k: dilated_conv2d(x, k, d, native=False)  # noqa: E731 - rearranged forms
    y_ref, g_ref = _value_and_grads(plain, x, k)
    y, g = _value_and_grads(fast, x, k)
    _assert_close(y, y_ref)
    for a, b in zip(g, g_ref):
        _assert_close(a, b)


@pytest.mark.parametrize("native", [True, False])
def test_dilated_conv_native_and_phase_forms_agree(native):
    x, k = _rand((2, 32, 32, 5), 1), _rand((3, 3, 5, 7), 2)
    # Forward only: TF's own CPU kernels (oneDNN off, as in the tests) have no
    # dilated Conv2D backward pass; the phase form's gradients are tested above.
    _assert_close(dilated_conv2d(x, k, 4, native=native),
                  tf.nn.convolution(x, k, 1, "SAME", dilations=4))


@pytest.mark.parametrize("native", [True, False])
def test_dilated_conv_with_unknown_sizes(native):
    # Sizes known only at run time (the exported sampler): the native dilated
    # op where it exists, else TF's plain dilated conv.
    fn = tf.function(lambda x, k: dilated_conv2d(x, k, 4, native=native),
                     input_signature=[tf.TensorSpec([None, None, None, 3]),
                                      tf.TensorSpec([3, 3, 3, 4])])
    x, k = _rand((1, 16, 16, 3), 3), _rand((3, 3, 3, 4), 4)
    _assert_close(fn(x, k), tf.nn.convolution(x, k, 1, "SAME", dilations=4))


@pytest.mark.parametrize("h,w", [(4, 4), (8, 6), (1, 1), (5, 3)])
def test_upsample_conv_equals_conv_of_upsampled(h, w):
    x, k = _rand((2, h, w, 6), 5), _rand((3, 3, 6, 4), 6)
    plain = lambda x, k: tf.nn.conv2d(upsample2x(x), k, 1, "SAME")  # noqa: E731
    y_ref, g_ref = _value_and_grads(plain, x, k)
    y, g = _value_and_grads(upsample_conv2d, x, k)
    assert y.shape == (2, 2 * h, 2 * w, 4)
    _assert_close(y, y_ref)
    for a, b in zip(g, g_ref):
        _assert_close(a, b)


@pytest.mark.parametrize("fast", [True, False])
def test_fast_paths_argument_reaches_every_layer(fast):
    gen = Generator(fast_paths=fast, native_dilation=False)
    layers = [layer for layer in gen._flatten_layers()
              if isinstance(layer, (DilatedConv2D, UpsampleConv2D))]
    assert len(layers) == 8 + 4  # conv7..10 and xconv7..10 atrous; four upsamplings
    assert all(layer.fast is fast for layer in layers)
    assert all(layer.native_dilation is False for layer in layers
               if isinstance(layer, DilatedConv2D))
    assert Generator.from_config(gen.get_config()).fast_paths is fast


def test_generator_fast_paths_equal_plain_generator():
    """The whole generator (all dilations, both upsamplings, attention) on vs off."""
    gen = Generator()
    gen.build([(None, 32, 32, 3)])
    plain = Generator(fast_paths=False)
    plain.build([(None, 32, 32, 3)])
    plain.set_weights(gen.get_weights())
    images, z = _rand((2, 32, 32, 3), 7), _rand((2, 32, 32, 1), 8)
    masks = np.zeros((2, 32, 32, 1), np.float32)
    masks[0, 8:24, 8:24] = 1
    masks[1, 6:20, 10:26] = 1
    masks = tf.constant(masks)
    incomplete = tf.clip_by_value(images, -1, 1) * (1 - masks)

    def run(net):
        with tf.GradientTape() as tape:
            coarse, refined = net((incomplete, masks, z))
            loss = tf.reduce_sum(coarse * _rand(coarse.shape, 9)) + tf.reduce_sum(
                refined * _rand(refined.shape, 10))
        return coarse, refined, tape.gradient(loss, net.trainable_variables)

    c0, r0, g0 = run(plain)
    c1, r1, g1 = run(gen)
    _assert_close(c1, c0, atol=1e-5)
    _assert_close(r1, r0, atol=1e-5)
    for v, a, b in zip(gen.trainable_variables, g1, g0):
        _assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_bfloat16_full_width_noise_is_as_accurate_as_broadcast_add(monkeypatch):
    """Under bfloat16 z is materialised at full width (a fusable add).

    The fused kernel rounds to bfloat16 once (after the ELU) instead of after
    each op, so it differs from the unfused bfloat16 graph by rounding; both
    are held against the float32 generator with the same weights.
    """
    exact = Generator()
    exact.build([(None, 32, 32, 3)])
    gen = Generator(dtype="mixed_bfloat16")
    gen.build([(None, 32, 32, 3)])
    gen.set_weights(exact.get_weights())
    images, z = _rand((2, 32, 32, 3), 7), _rand((2, 32, 32, 1), 8)
    masks = np.zeros((2, 32, 32, 1), np.float32)
    masks[:, 8:24, 8:24] = 1
    inputs = (tf.clip_by_value(images, -1, 1) * (1 - masks), tf.constant(masks), z)

    def run(g):
        with tf.GradientTape() as tape:
            _, refined = tf.function(g)(inputs)
            refined = tf.cast(refined, tf.float32)
            loss = tf.reduce_sum(refined * _rand(refined.shape, 10))
        return [refined] + tape.gradient(loss, g.trainable_variables)

    def rel_errors(values, reference):
        return np.array([np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-12)
                         for a, b in zip(values, reference)])

    reference = run(exact)
    fused = run(gen)
    assert gen.compute_dtype == "bfloat16"
    monkeypatch.setattr(Generator, "_noise_for", lambda self, zs, level, channels: zs[level])
    plain = run(gen)
    err_fused, err_plain = rel_errors(fused, reference), rel_errors(plain, reference)
    # The output: bfloat16 accuracy, and no worse than unfused. Measured
    # relative errors: 0.75e-2 with oneDNN's bfloat16 convs; 2.1-2.3e-2 with
    # TF's own CPU kernels (oneDNN off, or a CPU without AVX-512, where
    # oneDNN does not take bfloat16; nothing is fused there, so both are equal).
    bound = 2e-2 if native_dilation_supported(tf.bfloat16) else 4e-2
    assert err_fused[0] < bound and err_fused[0] <= 1.1 * err_plain[0] + 1e-3
    # The weight gradients: which rounding lands closer varies from seed to
    # seed (mean relative errors 0.03-0.07 for both); no systematic loss.
    assert np.mean(err_fused[1:]) <= 1.5 * np.mean(err_plain[1:]), (err_fused, err_plain)


def test_upsample_layers_keep_reference_variables():
    gen = Generator()
    gen.build([(None, 32, 32, 3)])
    kernels = {v.path: tuple(v.shape) for v in gen.weights}
    assert kernels["inpaint_net/conv13_upsample/conv13_upsample_conv/kernel"] == (3, 3, 128, 64)
    assert kernels["inpaint_net/allconv15_upsample/allconv15_upsample_conv/kernel"] == (3, 3, 64, 32)
    assert kernels["inpaint_net/conv10_atrous/kernel"] == (3, 3, 128, 128)
    assert gen.count_params() == 3_603_942


def test_critic_leaky_relu_matches_tf_and_keeps_penalty_gradients(monkeypatch):
    x = _rand((3, 16, 16, 4), 11)
    np.testing.assert_array_equal(critics.leaky_relu(x).numpy(), tf.nn.leaky_relu(x, 0.2).numpy())
    critic = critics.local_critic((16, 16))
    critic.build(None)
    interpolates = _rand((3, 16, 16, 3), 12)
    masks = tf.constant(np.random.default_rng(13).integers(0, 2, (3, 16, 16, 1)), tf.float32)

    def penalty_and_grads():
        with tf.GradientTape() as tape:
            gp = L.gradient_penalty(critic, interpolates, masks)
        grads = tape.gradient(gp, critic.trainable_variables)
        # The fast form leaves the (exactly zero) bias gradients undefined.
        return gp, [tf.zeros_like(v) if g is None else g
                    for v, g in zip(critic.trainable_variables, grads)]

    gp_fast, g_fast = penalty_and_grads()
    monkeypatch.setattr(critics, "leaky_relu", lambda x, a=0.2: tf.nn.leaky_relu(x, a))
    gp_ref, g_ref = penalty_and_grads()
    np.testing.assert_allclose(gp_fast.numpy(), gp_ref.numpy(), rtol=1e-6)
    for a, b in zip(g_fast, g_ref):
        _assert_close(a, b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- train steps
def _tiny_model(precision=None):
    # Built without build_piigan's probe: these tests run the step in that dtype whatever it says.
    config = load_config(preset="tiny", overrides={"D_STEPS": 1})
    model = PiiGAN.from_config_object(config, precision=precision)
    g_optimizer, d_optimizer = build_optimizers(config, precision)
    model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer)
    return config, model


def _batch(config, k):
    rng = np.random.default_rng(0)
    b, (h, w), (bh, bw) = config.BATCH_SIZE, config.img_hw, config.box_hw
    masks = np.zeros((k, b, h, w, 1), np.float32)
    masks[:, :, 9:23, 8:24] = 1
    data = {"images": tf.constant(rng.uniform(-1, 1, (k, b, h, w, 3)).astype(np.float32)),
            "masks": tf.constant(masks),
            "boxes": tf.constant(np.tile(np.array([8, 8, bh, bw], np.int32), (k, b, 1)))}
    data.update(training_noise(tf.constant(3, tf.int64), k, b, (h, w), (bh, bw), seed=0))
    return data


def _moments(model):
    return [np.asarray(v) for o in (model.g_optimizer, model.d_optimizer)
            for v in o.variables if v.dtype == "float32" and len(v.shape) > 0]


def _weights_and_gradients(model):
    """(weight, gradient of its one Adam step) pairs: m = (1 - beta_1) g after one step."""
    out = []
    for opt in (model.g_optimizer, model.d_optimizer):
        for var in opt._trainable_variables:
            m = opt._momentums[opt._get_variable_index(var)]
            out.append((np.asarray(var), np.asarray(m) / (1 - opt.beta_1)))
    return out


@pytest.mark.slow
def test_jit_compiled_step_equals_plain_step():
    config, plain = _tiny_model()
    _, jit = _tiny_model()
    jit.set_weights(plain.get_weights())
    data = _batch(config, config.D_STEPS + 1)
    out_plain = tf.function(plain.train_step)(data)
    out_jit = tf.function(jit.train_step, jit_compile=True)(data)
    # The critic terms average the D_STEPS critic steps, all but the first
    # after an Adam update (see below for its float noise): 5e-5 absolute.
    for name in out_plain:
        np.testing.assert_allclose(float(out_jit[name]), float(out_plain[name]), rtol=1e-4,
                                   atol=5e-5, err_msg=name)
    # One Adam step moves a weight by lr * g / (|g| + 1e-8), lr = 1e-4: by about
    # lr wherever |g| >> eps, and there the two steps agree to float precision;
    # where g is itself of order eps, its float noise moves the step by up to
    # lr. The moments (the gradients themselves) agree to float precision.
    clear = 0
    for (wa, ga), (wb, gb) in zip(_weights_and_gradients(jit), _weights_and_gradients(plain)):
        mask = np.abs(gb) > 1e-6
        clear += mask.sum()
        np.testing.assert_allclose(wa[mask], wb[mask], atol=1e-6)
        np.testing.assert_allclose(wa, wb, atol=2e-4)
    assert clear > 0.5 * sum(w.size for w in plain.get_weights())
    for a, b in zip(_moments(jit), _moments(plain)):
        assert np.max(np.abs(a - b)) <= 1e-3 * np.max(np.abs(b)) + 1e-12


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_step_runs_with_float32_variables(precision):
    config, model = _tiny_model(precision)
    assert model.generator.compute_dtype == precision
    assert all(v.dtype == "float32" for v in model.weights)
    before = [np.asarray(v) for v in model.generator.trainable_variables]
    out = tf.function(model.train_step)(_batch(config, config.D_STEPS + 1))
    assert all(np.isfinite(float(v)) for v in out.values())
    assert all(v.dtype == "float32" for v in model.weights)
    after = [np.asarray(v) for v in model.generator.trainable_variables]
    if precision == "float16" and int(model.g_optimizer.iterations) == 0:
        # The loss scaler skipped a step with overflowing gradients and halved the scale.
        assert float(model.g_optimizer.dynamic_scale) < model.g_optimizer.initial_scale
    else:
        assert any(np.any(a != b) for a, b in zip(after, before))
    completed = model((_batch(config, 1)["images"][0], _batch(config, 1)["masks"][0]))
    assert completed.dtype == tf.float32


def test_resolve_mixed_precision():
    assert resolve_mixed_precision(None) is None
    assert resolve_mixed_precision("bfloat16") == "bfloat16"
    assert resolve_mixed_precision("auto") in ("bfloat16", "float16")
    with pytest.raises(ValueError, match="mixed_precision"):
        resolve_mixed_precision("int8")


# ------------------------------------------------------- noise and layout
def test_training_noise_is_a_function_of_seed_and_index():
    a = training_noise(tf.constant(5, tf.int64), 3, 2, (16, 16), (8, 8), seed=1)
    b = training_noise(tf.constant(5, tf.int64), 3, 2, (16, 16), (8, 8), seed=1)
    c = training_noise(tf.constant(6, tf.int64), 3, 2, (16, 16), (8, 8), seed=1)
    assert a["z"].shape == (3, 2, 16, 16, 1) and a["alpha"].shape == (3, 2, 2)
    assert a["eps"].shape == (2, 64)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
        assert not np.array_equal(a[k].numpy(), c[k].numpy())
    assert 0 <= float(tf.reduce_min(a["alpha"])) and float(tf.reduce_max(a["alpha"])) < 1


def test_added_noise_resumes_exactly():
    images = tf.zeros([6, 2, 2, 16, 16, 3])
    ds = tf.data.Dataset.from_tensor_slices({"images": images})
    full = list(add_training_noise(ds, (8, 8), seed=3))
    resumed = list(add_training_noise(ds.skip(4), (8, 8), seed=3, start=4))
    assert len(resumed) == 2
    for a, b in zip(full[4:], resumed):
        np.testing.assert_array_equal(a["z"].numpy(), b["z"].numpy())
        np.testing.assert_array_equal(a["eps"].numpy(), b["eps"].numpy())


def test_batch_major_round_trip():
    element = {"images": _rand((6, 4, 8, 8, 3), 1), "masks": _rand((6, 4, 8, 8, 1), 2),
               "boxes": tf.zeros([6, 4, 4], tf.int32), "z": _rand((6, 4, 8, 8, 1), 3),
               "alpha": _rand((6, 4, 2), 4), "eps": _rand((4, 16), 5)}
    major = to_batch_major(element)
    assert major["images"].shape == (4, 6, 8, 8, 3) and major["alpha"].shape == (4, 6, 2)
    assert major["eps"].shape == (4, 16)
    back = from_batch_major(major)
    for k in element:
        np.testing.assert_array_equal(back[k].numpy(), element[k].numpy())
