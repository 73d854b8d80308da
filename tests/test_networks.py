"""Networks: reference parameter counts, variable names and shapes, generator behaviour."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf.networks import (Extractor, Generator, global_critic, local_critic,  # noqa: E402
                                sample_z)


# Kernel shapes (HWIO) of every generator conv, from the spec's tables, with dilation.
def _k(k, cin, cout, dil=1):
    return (k, k, cin, cout), dil


GENERATOR_KERNELS = {
    # stage 1
    "conv1": _k(5, 6, 32), "conv2_downsample": _k(3, 32, 64), "conv3": _k(3, 64, 64),
    "conv4_downsample": _k(3, 64, 128), "conv5": _k(3, 128, 128), "conv6": _k(3, 128, 128),
    "conv7_atrous": _k(3, 128, 128, 2), "conv8_atrous": _k(3, 128, 128, 4),
    "conv9_atrous": _k(3, 128, 128, 8), "conv10_atrous": _k(3, 128, 128, 16),
    "conv11": _k(3, 128, 128), "conv12": _k(3, 128, 128),
    "conv13_upsample/conv13_upsample_conv": _k(3, 128, 64), "conv14": _k(3, 64, 64),
    "conv15_upsample/conv15_upsample_conv": _k(3, 64, 32), "conv16": _k(3, 32, 16),
    "conv17": _k(3, 16, 3),
    # stage 2, hallucination branch
    "xconv1": _k(5, 6, 32), "xconv2_downsample": _k(3, 32, 32), "xconv3": _k(3, 32, 64),
    "xconv4_downsample": _k(3, 64, 64), "xconv5": _k(3, 64, 128), "xconv6": _k(3, 128, 128),
    "xconv7_atrous": _k(3, 128, 128, 2), "xconv8_atrous": _k(3, 128, 128, 4),
    "xconv9_atrous": _k(3, 128, 128, 8), "xconv10_atrous": _k(3, 128, 128, 16),
    # stage 2, attention branch
    "pmconv1": _k(5, 6, 32), "pmconv2_downsample": _k(3, 32, 32), "pmconv3": _k(3, 32, 64),
    "pmconv4_downsample": _k(3, 64, 128), "pmconv5": _k(3, 128, 128), "pmconv6": _k(3, 128, 128),
    "pmconv9": _k(3, 128, 128), "pmconv10": _k(3, 128, 128),
    # merge
    "allconv11": _k(3, 256, 128), "allconv12": _k(3, 128, 128),
    "allconv13_upsample/allconv13_upsample_conv": _k(3, 128, 64), "allconv14": _k(3, 64, 64),
    "allconv15_upsample/allconv15_upsample_conv": _k(3, 64, 32), "allconv16": _k(3, 32, 16),
    "allconv17": _k(3, 16, 3),
}
STRIDE_2 = {"conv2_downsample", "conv4_downsample", "xconv2_downsample", "xconv4_downsample",
            "pmconv2_downsample", "pmconv4_downsample"}


@pytest.fixture(scope="module")
def nets128():
    g = Generator()
    g.build([(None, 128, 128, 3), (None, 128, 128, 1), (None, 128, 128, 1)])
    e = Extractor((64, 64))
    e.build((None, 64, 64, 3))
    lc = local_critic((64, 64))
    lc.build((None, 64, 64, 3))
    gc = global_critic((128, 128))
    gc.build((None, 128, 128, 3))
    return {"generator": g, "extractor": e, "local": lc, "global": gc}


def _paths(model):
    return {v.path: tuple(v.shape) for v in model.weights}


# ------------------------------------------------------------------ counts
@pytest.mark.parametrize("name,count", [("generator", 3_603_942), ("extractor", 36_230_528),
                                        ("local", 4_314_753), ("global", 2_684_289)])
def test_parameter_counts_at_128(nets128, name, count):
    model = nets128[name]
    assert model.count_params() == count
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == count


def test_parameter_count_sums_the_spec_table(nets128):
    # The generator count equals the sum over the layer table (kernels + biases).
    total = sum(int(np.prod(shape)) + shape[-1] for shape, _ in GENERATOR_KERNELS.values())
    assert total == 3_603_942


# ------------------------------------------------------------------ names / shapes
def test_generator_variable_names_and_shapes(nets128):
    paths = _paths(nets128["generator"])
    expected = {}
    for name, (shape, _) in GENERATOR_KERNELS.items():
        expected[f"inpaint_net/{name}/kernel"] = shape
        expected[f"inpaint_net/{name}/bias"] = (shape[-1],)
    assert paths == expected
    # A few spelled out, as a reader would look them up.
    assert paths["inpaint_net/conv1/kernel"] == (5, 5, 6, 32)
    assert paths["inpaint_net/conv17/kernel"] == (3, 3, 16, 3)
    assert paths["inpaint_net/conv13_upsample/conv13_upsample_conv/kernel"] == (3, 3, 128, 64)
    assert paths["inpaint_net/pmconv6/kernel"] == (3, 3, 128, 128)
    assert paths["inpaint_net/allconv17/bias"] == (3,)


def test_generator_strides_and_dilations(nets128):
    g = nets128["generator"]
    convs = {layer.name: layer for layer in g._flatten_layers(include_self=False)
             if hasattr(layer, "kernel_size")}
    seen = 0
    for name, (shape, dil) in GENERATOR_KERNELS.items():
        layer = convs[name.split("/")[-1]]
        assert tuple(layer.kernel_size) == shape[:2], name
        assert tuple(layer.dilation_rate) == (dil, dil), name
        stride = 2 if name in STRIDE_2 else 1
        assert tuple(layer.strides) == (stride, stride), name
        assert layer.padding == "same", name
        seen += 1
    assert seen == len(GENERATOR_KERNELS) == len(convs) == 42


def test_generator_noise_resolution_per_layer(nets128):
    # The spec's "z added" column: 0 = z (full size), 1 = z1 (H/2), 2 = z2 (H/4);
    # the upsampling tail (conv13..17, allconv13..17) takes no noise.
    expected = {"conv1": 0, "conv2_downsample": 1, "conv3": 1, "xconv1": 0,
                "xconv2_downsample": 1, "xconv3": 1, "pmconv1": 0, "pmconv2_downsample": 1,
                "pmconv3": 1}
    for name in ("conv4_downsample", "conv5", "conv6", "conv7_atrous", "conv8_atrous",
                 "conv9_atrous", "conv10_atrous", "conv11", "conv12", "xconv4_downsample",
                 "xconv5", "xconv6", "xconv7_atrous", "xconv8_atrous", "xconv9_atrous",
                 "xconv10_atrous", "pmconv4_downsample", "pmconv5", "pmconv6", "pmconv9",
                 "pmconv10", "allconv11", "allconv12"):
        expected[name] = 2
    assert nets128["generator"].z_levels == expected


def test_extractor_variable_names_and_shapes(nets128):
    paths = _paths(nets128["extractor"])
    assert paths == {
        "build_extractor/conv1/kernel": (5, 5, 3, 64), "build_extractor/conv1/bias": (64,),
        "build_extractor/conv2/kernel": (5, 5, 64, 128), "build_extractor/conv2/bias": (128,),
        "build_extractor/conv3/kernel": (5, 5, 128, 256), "build_extractor/conv3/bias": (256,),
        "build_extractor/conv4/kernel": (5, 5, 256, 256), "build_extractor/conv4/bias": (256,),
        "build_extractor/z/kernel": (4096, 4096), "build_extractor/z/bias": (4096,),
        "build_extractor/z_var/kernel": (4096, 4096), "build_extractor/z_var/bias": (4096,),
    }


def test_critic_variable_names_and_shapes(nets128):
    local = _paths(nets128["local"])
    assert local["discriminator_local/conv1/kernel"] == (5, 5, 3, 64)
    assert local["discriminator_local/conv4/kernel"] == (5, 5, 256, 512)
    assert local["discriminator_local/dout_local_fc/kernel"] == (4 * 4 * 512, 1)  # [in, out]
    assert local["discriminator_local/dout_local_fc/bias"] == (1,)
    assert len(local) == 10
    glob = _paths(nets128["global"])
    assert glob["discriminator_global/conv4/kernel"] == (5, 5, 256, 256)
    assert glob["discriminator_global/dout_global_fc/kernel"] == (8 * 8 * 256, 1)
    assert len(glob) == 10


# ------------------------------------------------------------------ generator behaviour
def _inputs(b, h, w, seed=0, box=(8, 8, 16, 16)):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (b, h, w, 3)).astype(np.float32)
    masks = np.zeros((b, h, w, 1), np.float32)
    t, l, bh, bw = box
    masks[:, t:t + bh, l:l + bw] = 1.0
    masks[-1] = 0.0
    masks[-1, 4:20, 20:36 if w > 32 else 28] = 1.0  # a different mask for the last sample
    z = rng.normal(size=(b, h, w, 1)).astype(np.float32)
    return images * (1 - masks), masks, z


@pytest.fixture(scope="module")
def gen32():
    return Generator()


@pytest.mark.parametrize("hw", [(32, 32), (32, 48)])
def test_generator_output_shapes_and_range(gen32, hw):
    h, w = hw
    incomplete, masks, z = _inputs(2, h, w)
    coarse, refined, offsets = gen32((incomplete, masks, z), return_offsets=True)
    assert coarse.shape == (2, h, w, 3) and refined.shape == (2, h, w, 3)
    assert coarse.dtype == tf.float32 and refined.dtype == tf.float32
    # attention runs on the H/4 features, matching at another /2
    assert offsets.shape == (2, h // 8, w // 8, 2)
    for x in (coarse.numpy(), refined.numpy()):
        assert np.all(np.isfinite(x))
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert x.std() > 0.0


def test_generator_clips_to_unit_range():
    g = Generator()
    incomplete, masks, z = _inputs(2, 32, 32, seed=1)
    g((incomplete, masks, z))
    for conv in (g.stage1_out, g.stage2_out):
        conv.kernel.assign(conv.kernel * 1000.0)
    coarse, refined = g((incomplete, masks, z))
    for x in (coarse.numpy(), refined.numpy()):
        assert x.min() == -1.0 and x.max() == 1.0
        # Most values saturate, so the clip (not a squashing function) is applied.
        assert np.mean(np.abs(x) == 1.0) > 0.5


def test_generator_noise_outside_the_hole_is_ignored(gen32):
    incomplete, masks, z = _inputs(2, 32, 32, seed=2)
    other = z + 5.0 * np.random.default_rng(3).normal(size=z.shape).astype(np.float32) * (1 - masks)
    c1, r1 = gen32((incomplete, masks, z))
    c2, r2 = gen32((incomplete, masks, other))
    np.testing.assert_array_equal(c1.numpy(), c2.numpy())
    np.testing.assert_array_equal(r1.numpy(), r2.numpy())


def test_generator_noise_inside_the_hole_changes_the_output(gen32):
    incomplete, masks, z = _inputs(2, 32, 32, seed=4)
    z2 = np.random.default_rng(5).normal(size=z.shape).astype(np.float32)
    _, r1 = gen32((incomplete, masks, z))
    _, r2 = gen32((incomplete, masks, z2))
    diff = np.abs(r1.numpy() - r2.numpy())
    hole = np.broadcast_to(masks, diff.shape) > 0
    for i in range(2):
        assert diff[i][hole[i]].mean() > 1e-3


def test_generator_is_deterministic_and_batch_independent(gen32):
    incomplete, masks, z = _inputs(3, 32, 32, seed=6)
    _, r = gen32((incomplete, masks, z))
    _, r_again = gen32((incomplete, masks, z))
    np.testing.assert_array_equal(r.numpy(), r_again.numpy())
    _, r1 = gen32((incomplete[1:2], masks[1:2], z[1:2]))
    np.testing.assert_allclose(r1.numpy()[0], r.numpy()[1], atol=1e-5)


def test_generator_input_is_six_channels(gen32):
    # concat(image, z, ones, ones*mask): conv1, xconv1 and pmconv1 read 6 channels.
    incomplete, masks, z = _inputs(1, 32, 32)
    gen32((incomplete, masks, z))
    for layer in (gen32.stage1[0], gen32.hallu[0], gen32.attn_in[0]):
        assert layer.kernel.shape[2] == 6


# ------------------------------------------------------------------ extractor
def test_extractor_outputs_and_activation_option():
    boxes = tf.constant(np.random.default_rng(7).uniform(-1, 1, (2, 16, 16, 3)), tf.float32)
    elu = Extractor((16, 16), activation="elu")
    leaky = Extractor((16, 16), activation="leaky_relu")
    mu, logvar = elu(boxes)
    assert mu.shape == (2, 256) and logvar.shape == (2, 256)
    leaky(boxes)
    leaky.set_weights(elu.get_weights())

    def manual(model, act):
        x = boxes
        for conv in model.convs:
            x = act(conv(x))
        x = tf.reshape(x, [2, -1])
        return model.mu_head(x), model.logvar_head(x)

    mu_l, logvar_l = leaky(boxes)
    mu_e_ref, logvar_e_ref = manual(elu, tf.nn.elu)
    mu_l_ref, logvar_l_ref = manual(leaky, lambda v: tf.nn.leaky_relu(v, alpha=0.2))
    np.testing.assert_allclose(mu.numpy(), mu_e_ref.numpy(), atol=1e-6)
    np.testing.assert_allclose(logvar.numpy(), logvar_e_ref.numpy(), atol=1e-6)
    np.testing.assert_allclose(mu_l.numpy(), mu_l_ref.numpy(), atol=1e-6)
    np.testing.assert_allclose(logvar_l.numpy(), logvar_l_ref.numpy(), atol=1e-6)
    # Same weights, different activation -> different outputs.
    assert np.abs(mu.numpy() - mu_l.numpy()).max() > 1e-4
    assert leaky.get_config()["activation"] == "leaky_relu"


def test_extractor_invalid_activation():
    with pytest.raises(ValueError, match="elu.*leaky_relu|leaky_relu.*elu") as info:
        Extractor((16, 16), activation="relu")
    assert "relu" in str(info.value)


def test_sample_z_reparameterisation():
    mu = tf.constant([[1.0, -1.0, 0.0]])
    logvar = tf.constant([[0.0, 2.0 * math.log(2.0), -2.0 * math.log(4.0)]])  # std 1, 2, 1/4
    eps = tf.constant([[0.5, 0.5, -2.0]])
    # 1 + 1*0.5 = 1.5 ; -1 + 2*0.5 = 0 ; 0 + 0.25*-2 = -0.5
    np.testing.assert_allclose(sample_z(mu, logvar, eps).numpy(), [[1.5, 0.0, -0.5]], atol=1e-6)
    # eps = 0 gives the mean (the reference's slip would give mu too, but eps=1 would not).
    np.testing.assert_allclose(sample_z(mu, logvar, tf.zeros_like(mu)).numpy(), mu.numpy())
    np.testing.assert_allclose(sample_z(mu, logvar, tf.ones_like(mu)).numpy(),
                               [[2.0, 1.0, 0.25]], atol=1e-6)


# ------------------------------------------------------------------ critics
def test_critics_small_inputs():
    lc = local_critic((16, 16))
    gc = global_critic((32, 48))
    x_local = tf.random.stateless_uniform([3, 16, 16, 3], seed=[1, 1], minval=-1, maxval=1)
    x_global = tf.random.stateless_uniform([3, 32, 48, 3], seed=[1, 2], minval=-1, maxval=1)
    s_local, s_global = lc(x_local), gc(x_global)
    assert s_local.shape == (3, 1) and s_global.shape == (3, 1)
    assert s_local.dtype == tf.float32
    assert lc.fc.kernel.shape == (1 * 1 * 512, 1)
    assert gc.fc.kernel.shape == (2 * 3 * 256, 1)
    # leaky ReLU 0.2 after every conv, then flatten + dense.
    x = x_local
    for conv in lc.convs:
        x = tf.nn.leaky_relu(conv(x), 0.2)
    np.testing.assert_allclose(s_local.numpy(), lc.fc(tf.reshape(x, [3, -1])).numpy(), atol=1e-6)
    # Samples are scored independently.
    np.testing.assert_allclose(lc(x_local[1:2]).numpy()[0], s_local.numpy()[1], atol=1e-6)
