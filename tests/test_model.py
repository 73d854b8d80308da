"""PiiGAN model (train_step, inference, checkpoints, optimizers), at 32x32."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf import losses as L  # noqa: E402
from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.model import D_TERMS, G_TERMS, LossWeights, PiiGAN  # noqa: E402

IMG_HW = (32, 32)
BOX_HW = (16, 16)
BATCH = 2
D_STEPS = 5
SEED = 1234


def make_data(seed, k=D_STEPS + 1, noise=True):
    """One train_step element: k batches of BATCH images with per-sample boxes and holes.

    images [k, B, 32, 32, 3] in [-1, 1]; boxes int32 [k, B, 4] (top, left, 16, 16);
    masks [k, B, 32, 32, 1], the box shrunk by 0..2 pixels per side (1 = hole);
    with ``noise``: z [k, B, 32, 32, 1], alpha [k, B, 2], eps [B, 16*16].
    """
    rng = np.random.default_rng(seed)
    h, w = IMG_HW
    bh, bw = BOX_HW
    images = rng.uniform(-1, 1, (k, BATCH, h, w, 3)).astype(np.float32)
    masks = np.zeros((k, BATCH, h, w, 1), np.float32)
    boxes = np.zeros((k, BATCH, 4), np.int32)
    for i in range(k):
        for b in range(BATCH):
            top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
            d = rng.integers(0, 3, 4)
            boxes[i, b] = [top, left, bh, bw]
            masks[i, b, top + d[0]:top + bh - d[1], left + d[2]:left + bw - d[3]] = 1.0
    data = {"images": images, "masks": masks, "boxes": boxes}
    if noise:
        data["z"] = rng.normal(size=(k, BATCH, h, w, 1)).astype(np.float32)
        data["alpha"] = rng.uniform(size=(k, BATCH, 2)).astype(np.float32)
        data["eps"] = rng.normal(size=(BATCH, bh * bw)).astype(np.float32)
    return {key: tf.constant(v) for key, v in data.items()}


def new_model(global_seed, d_steps=D_STEPS, seed=SEED):
    keras.utils.set_random_seed(global_seed)
    model = PiiGAN(img_hw=IMG_HW, box_hw=BOX_HW, d_steps=d_steps, seed=seed)
    model.compile()
    return model


def run_step(step, model, data):
    """One train_step; returns this step's loss terms (trackers reset first)."""
    model.reset_metrics()
    return {k: float(v) for k, v in step(data).items()}


def assert_same_losses(a, b, rel_tol=1e-5):
    """Equal up to float rounding: multithreaded CPU reductions are not bitwise
    reproducible unless ``tf.config.experimental.enable_op_determinism()``."""
    assert set(a) == set(b)
    for k in a:
        assert math.isclose(a[k], b[k], rel_tol=rel_tol, abs_tol=1e-6), (k, a[k], b[k])


def state_variables(model):
    return (list(model.variables) + list(model.g_optimizer.variables)
            + list(model.d_optimizer.variables))


def snapshot(model):
    return [np.array(v.numpy()) for v in state_variables(model)]


def restore(model, values):
    for v, value in zip(state_variables(model), values):
        v.assign(value)


@pytest.fixture(scope="module")
def gan():
    """The module's model and its train_step, traced once (explicit noise only)."""
    model = new_model(SEED)
    return model, tf.function(model.train_step)


@pytest.fixture(scope="module")
def first_step(gan):
    model, step = gan
    nets = {"generator": model.generator, "extractor": model.extractor,
            "local_critic": model.local_critic, "global_critic": model.global_critic}
    before = {n: {v.path: v.numpy().copy() for v in net.trainable_variables}
              for n, net in nets.items()}
    its = (int(model.g_optimizer.iterations), int(model.d_optimizer.iterations))
    out = run_step(step, model, make_data(0))
    after = {n: {v.path: v.numpy().copy() for v in net.trainable_variables}
             for n, net in nets.items()}
    its_after = (int(model.g_optimizer.iterations), int(model.d_optimizer.iterations))
    return {"before": before, "after": after, "out": out, "iterations": (its, its_after)}


# ------------------------------------------------------------------ train_step
@pytest.mark.parametrize("net", ["generator", "extractor", "local_critic", "global_critic"])
def test_train_step_changes_every_variable_of_each_network(first_step, net):
    before, after = first_step["before"][net], first_step["after"][net]
    assert len(before) > 0
    unchanged = {path for path, b in before.items() if np.array_equal(b, after[path])}
    if net.endswith("critic"):
        # The critic's last bias shifts real and fake scores alike: it cancels
        # in mean(fake) - mean(real) and the penalty never sees it, so WGAN-GP
        # gives it no gradient (as in the reference).
        where = net.split("_")[0]
        assert len(unchanged) == 1
        assert unchanged.pop().endswith(f"discriminator_{where}/dout_{where}_fc/bias")
    else:
        assert not unchanged, f"{net}: unchanged {sorted(unchanged)}"
    # Adam's first step moves each weight by about lr = 1e-4 (bounded by a few lr).
    biggest = max(np.abs(before[p] - after[p]).max() for p in before)
    assert biggest < (D_STEPS if net.endswith("critic") else 1) * 5e-4


def test_train_step_critic_schedule(gan, first_step):
    model, _ = gan
    (g0, d0), (g1, d1) = first_step["iterations"]
    assert (g1 - g0, d1 - d0) == (1, D_STEPS)
    assert int(model.d_optimizer.iterations) == D_STEPS * int(model.g_optimizer.iterations)


def test_train_step_logs_every_term_finite(first_step):
    out = first_step["out"]
    assert set(out) == set(D_TERMS + G_TERMS)
    # ... which are the paper's terms, each under its own name, none missing.
    assert set(D_TERMS) == {"d_loss", "d_wgan", "d_local", "d_global",
                            "gp_loss", "gp_local", "gp_global"}
    assert set(G_TERMS) == {"g_loss", "g_adv", "g_local", "g_global", "ae", "ae_zx",
                            "l1_zx", "regress_z", "kl"}
    assert all(math.isfinite(v) for v in out.values()), out
    # Penalties and L1 terms are non-negative; KL of a Gaussian is non-negative.
    for name in ("gp_local", "gp_global", "ae", "ae_zx", "l1_zx", "regress_z", "kl"):
        assert out[name] >= 0.0, name
    # Known pixels of random images vs a fresh generator: ae is clearly nonzero.
    assert out["ae"] > 0.1 and out["ae_zx"] > 0.1


def test_train_step_logged_terms_are_consistent(first_step):
    out = first_step["out"]
    w = LossWeights()
    assert math.isclose(out["d_wgan"], out["d_local"] + out["d_global"], rel_tol=1e-5, abs_tol=1e-6)
    assert math.isclose(out["gp_loss"], w.wgan_gp_lambda * (out["gp_local"] + out["gp_global"]),
                        rel_tol=1e-5)
    assert math.isclose(out["d_loss"], out["d_wgan"] + out["gp_loss"], rel_tol=1e-5)
    assert math.isclose(out["g_adv"], w.global_wgan * out["g_global"] + out["g_local"],
                        rel_tol=1e-5, abs_tol=1e-6)
    total = L.generator_total({k: tf.constant(out[k]) for k in G_TERMS}, w.gan, w.kl,
                              w.regress_z, w.ae)
    assert math.isclose(out["g_loss"], float(total), rel_tol=1e-5)


def test_explicit_noise_gives_identical_steps(gan, first_step):
    model, step = gan
    data = make_data(1)
    start = snapshot(model)
    out1 = run_step(step, model, data)
    weights1 = [w.numpy() for w in model.weights]
    restore(model, start)
    model.draw_noise(tf.constant([D_STEPS + 1, BATCH, *IMG_HW]))  # move the model's own RNG on
    out2 = run_step(step, model, data)
    assert_same_losses(out1, out2)
    for a, b in zip(weights1, model.weights):
        np.testing.assert_allclose(b.numpy(), a, atol=2e-6, err_msg=b.path)
    # Other noise, same weights and images: other losses.
    restore(model, start)
    other = dict(data)
    other["z"] = tf.constant(np.random.default_rng(99).normal(size=data["z"].shape), tf.float32)
    out3 = run_step(step, model, other)
    for k in ("g_loss", "d_loss", "ae", "gp_global"):
        assert not math.isclose(out3[k], out1[k], rel_tol=1e-4), k


def test_local_and_global_penalties_draw_their_own_alpha(gan):
    """alpha[:, 0] interpolates the local penalty, alpha[:, 1] the global one
    (the reference calls random_interpolates once per critic)."""
    model, _ = gan
    data = make_data(5)
    images, masks, boxes, z = (data[k][0] for k in ("images", "masks", "boxes", "z"))
    start = snapshot(model)

    def penalties(alpha):
        restore(model, start)
        out = model.critic_step(images, masks, boxes, z, tf.constant(alpha, tf.float32))
        return float(out["gp_local"]), float(out["gp_global"])

    a = np.array([[0.1, 0.9], [0.8, 0.3]], np.float32)
    local, glob = penalties(a)
    # Changing only the global column leaves the local penalty as it was, and back.
    b = a.copy()
    b[:, 1] = [0.5, 0.6]
    local_b, glob_b = penalties(b)
    assert math.isclose(local_b, local, rel_tol=1e-6) and not math.isclose(glob_b, glob, rel_tol=1e-3)
    c = a.copy()
    c[:, 0] = [0.5, 0.6]
    local_c, glob_c = penalties(c)
    assert math.isclose(glob_c, glob, rel_tol=1e-6) and not math.isclose(local_c, local, rel_tol=1e-3)
    # Each matches the penalty computed directly with its own column.
    bh, bw = BOX_HW
    restore(model, start)
    _, _, _, completed = model._complete(images, masks, z)
    want_global = L.gradient_penalty(model.global_critic,
                                     L.random_interpolates(images, completed, a[:, 1]), masks)
    assert math.isclose(glob, float(want_global), rel_tol=1e-4)
    restore(model, start)


def test_train_step_rejects_wrong_number_of_batches(gan):
    model, _ = gan
    with pytest.raises(ValueError, match="d_steps"):
        model.train_step(make_data(2, k=D_STEPS))


def test_seeded_models_are_identical():
    # d_steps = 1 keeps these two eager runs short; the seeding is the same.
    a = new_model(7, d_steps=1)
    b = new_model(7, d_steps=1)
    initial = a.get_weights()
    for wa, wb in zip(initial, b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    data = make_data(3, k=2, noise=False)  # noise drawn from the models' seeded generators
    for _ in range(2):
        out_a = run_step(a.train_step, a, data)
        out_b = run_step(b.train_step, b, data)
        assert_same_losses(out_a, out_b)
        assert all(math.isfinite(v) for v in out_a.values())
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-6)
    # Another global seed gives other initial weights.
    c = new_model(8, d_steps=1)
    assert any(not np.array_equal(x, y) for x, y in zip(c.get_weights(), initial))


def test_model_seed_drives_the_noise():
    shape = tf.constant([2, BATCH, *IMG_HW])

    def noise(seed):
        model = PiiGAN(img_hw=IMG_HW, box_hw=BOX_HW, seed=seed)  # no build needed
        z, alpha, eps = model.draw_noise(shape)
        assert z.shape == (2, BATCH, *IMG_HW, 1) and alpha.shape == (2, BATCH, 2)
        assert eps.shape == (BATCH, BOX_HW[0] * BOX_HW[1])
        alpha = alpha.numpy()
        assert alpha.min() >= 0.0 and alpha.max() < 1.0
        return [z.numpy(), alpha, eps.numpy()], model

    first, model = noise(5)
    again, _ = noise(5)
    other, _ = noise(6)
    for x, y, o in zip(first, again, other):
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, o)
    # Successive draws differ (the generator's state advances).
    z2 = model.draw_noise(shape)[0].numpy()
    assert not np.array_equal(z2, first[0])


# ------------------------------------------------------------------ inference
def test_call_keeps_known_pixels(gan):
    model, _ = gan
    data = make_data(4)
    images, masks = data["images"][0], data["masks"][0]
    completed = model((images, masks)).numpy()
    assert completed.shape == (BATCH, *IMG_HW, 3) and completed.dtype == np.float32
    known = np.broadcast_to(masks.numpy() == 0, completed.shape)
    np.testing.assert_array_equal(completed[known], images.numpy()[known])
    hole = ~known
    assert np.all(np.abs(completed[hole]) <= 1.0)
    assert np.abs(completed[hole] - images.numpy()[hole]).mean() > 1e-2
    # Explicit noise: deterministic; the refined output fills the hole.
    z = data["z"][0]
    c1 = model((images, masks, z)).numpy()
    np.testing.assert_array_equal(c1, model((images, masks, z)).numpy())
    _, refined = model.generator((images * (1 - masks), masks, z))
    np.testing.assert_array_equal(c1[hole], refined.numpy()[hole])
    np.testing.assert_array_equal(model.complete_fixed(images, masks, seed=3).numpy(),
                                  model.complete_fixed(images, masks, seed=3).numpy())


# ------------------------------------------------------------------ checkpoints
def _checkpoint(model):
    return tf.train.Checkpoint(model=model, g_optimizer=model.g_optimizer,
                               d_optimizer=model.d_optimizer)


def test_checkpoint_round_trip(gan, first_step, tmp_path):
    model, step = gan
    assert int(model.g_optimizer.iterations) >= 1  # Adam moments are nonzero by now
    path = _checkpoint(model).save(str(tmp_path / "ckpt"))
    saved_weights = [w.numpy() for w in model.weights]
    saved_g = [v.numpy() for v in model.g_optimizer.variables]
    saved_d = [v.numpy() for v in model.d_optimizer.variables]
    data = make_data(5)
    expected = run_step(step, model, data)           # the uninterrupted run's next step
    expected_weights = [w.numpy() for w in model.weights]

    fresh = new_model(SEED + 99)
    assert any(not np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(fresh.weights, model.weights))
    _checkpoint(fresh).restore(path).assert_existing_objects_matched()
    assert int(fresh.g_optimizer.iterations) == int(saved_g[0]) >= 1
    assert int(fresh.d_optimizer.iterations) == D_STEPS * int(fresh.g_optimizer.iterations)
    names = [v.path for v in fresh.g_optimizer.variables]
    assert any("momentum" in n for n in names) and any("velocity" in n for n in names)
    for opt, values in ((fresh.g_optimizer, saved_g), (fresh.d_optimizer, saved_d)):
        assert len(opt.variables) == len(values)
        for v, value in zip(opt.variables, values):
            np.testing.assert_array_equal(v.numpy(), value, err_msg=v.path)
    moments = [v.numpy() for v in fresh.g_optimizer.variables if "momentum" in v.path]
    assert max(np.abs(m).max() for m in moments) > 0.0
    assert len(fresh.weights) == len(saved_weights)
    for w, value in zip(fresh.weights, saved_weights):
        np.testing.assert_array_equal(w.numpy(), value, err_msg=w.path)

    # Same next step (eager here, traced in the original: equal to float rounding).
    got = run_step(fresh.train_step, fresh, data)
    assert_same_losses(got, expected)
    for a, b in zip(expected_weights, fresh.weights):
        np.testing.assert_allclose(b.numpy(), a, atol=2e-6, err_msg=b.path)
    assert int(fresh.g_optimizer.iterations) == int(model.g_optimizer.iterations)
    assert int(fresh.d_optimizer.iterations) == int(model.d_optimizer.iterations)


def test_checkpoint_restores_noise_generator_state(tmp_path):
    a = PiiGAN(img_hw=IMG_HW, box_hw=BOX_HW, seed=SEED)
    a.draw_noise(tf.constant([2, BATCH, *IMG_HW]))  # as one training step does
    state = a.seed_generator.state.numpy()
    path = tf.train.Checkpoint(model=a).save(str(tmp_path / "ckpt"))
    b = PiiGAN(img_hw=IMG_HW, box_hw=BOX_HW, seed=SEED)
    tf.train.Checkpoint(model=b).restore(path)
    np.testing.assert_array_equal(b.seed_generator.state.numpy(), state)


def test_model_reads_its_config():
    tiny = load_config(preset="tiny")
    model = PiiGAN.from_config_object(tiny.replace(D_STEPS=2, LOSS_KL=0.5,
                                                   EXTRACTOR_ACTIVATION="leaky_relu"))
    assert model.img_hw == (32, 32) and model.box_hw == (16, 16) and model.d_steps == 2
    assert model.loss_weights_.kl == 0.5 and model.extractor.activation == "leaky_relu"
    assert model.gradient_clip is None
    assert PiiGAN.from_config_object(tiny.replace(GRADIENT_CLIP=True)).gradient_clip == 0.1


def _apply_fn(opt, variables):
    @tf.function
    def step(grads):
        opt.apply_gradients(zip(grads, variables))
    return step


def test_default_optimizer_is_tf1_adam_through_public_keras(tmp_path):
    """keras.optimizers.Adam with TF1's epsilon computes what the reference's
    tf.train.AdamOptimizer (the ApplyAdam kernel) computed, step for step."""
    from piigan_tf.model import default_optimizer

    rng = np.random.default_rng(0)
    init = [rng.normal(size=s).astype("float32") for s in [(3, 3, 4, 5), (5,)]]
    grads = [[rng.normal(size=x.shape).astype("float32") * 10.0 ** -k for x in init]
             for k in range(6)]  # shrinking gradients: epsilon and bias correction matter
    variables = [keras.Variable(x) for x in init]
    opt = default_optimizer("g_optimizer", learning_rate=1e-2)
    assert type(opt) is keras.optimizers.Adam
    assert (opt.epsilon, opt.beta_1, opt.beta_2) == (1e-8, 0.5, 0.9)
    opt.build(variables)
    step = _apply_fn(opt, variables)
    # TF1's ApplyAdam, on the same gradients (float64 in numpy).
    w = [x.astype(np.float64) for x in init]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    for t, g in enumerate(grads, start=1):
        step([tf.constant(x) for x in g])
        lr_t = 1e-2 * np.sqrt(1 - 0.9 ** t) / (1 - 0.5 ** t)
        for i, gi in enumerate(g):
            m[i] = 0.5 * m[i] + 0.5 * gi
            v[i] = 0.9 * v[i] + 0.1 * gi * gi
            w[i] = w[i] - lr_t * m[i] / (np.sqrt(v[i]) + 1e-8)
    for got, want, x in zip(variables, w, init):
        assert np.abs(want - x).max() > 1e-3  # it moved
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=2e-6)
    # Its slots are those earlier checkpoints hold (one moment pair per variable).
    path = tf.train.Checkpoint(optimizer=opt).write(str(tmp_path / "adam"))
    fresh = default_optimizer("g_optimizer", learning_rate=1e-2)
    fresh.build([keras.Variable(x) for x in init])
    tf.train.Checkpoint(optimizer=fresh).read(path).assert_consumed()
    for a, b in zip(opt.variables, fresh.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
