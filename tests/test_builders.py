"""The builders every caller uses: the compiled model and the training/validation data."""

import ast
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from piigan_tf.builders import (build_optimizers, build_piigan, training_dataset,
                                validation_batch)
from piigan_tf.config import load_config
from piigan_tf.data import read_flist, resolve_dataset
from piigan_tf.distribute import MixedPrecisionUnavailable

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def config():
    return load_config(preset="tiny", overrides={"D_STEPS": 2, "LEARNING_RATE": 3e-4,
                                                 "BETA_1": 0.4, "BETA_2": 0.8})


@pytest.fixture(scope="module")
def files(config):
    return read_flist(resolve_dataset(config.DATASET, config.DATA_DIR)[0])


def test_build_piigan_is_compiled_with_the_reference_adam(config):
    model = build_piigan(config)
    assert model.built and model.precision == "float32"
    for optimizer, name in ((model.g_optimizer, "g_optimizer"), (model.d_optimizer, "d_optimizer")):
        assert type(optimizer) is keras.optimizers.Adam and optimizer.name == name
        assert optimizer.epsilon == 1e-8  # TF1's AdamOptimizer (Keras' default is 1e-7)
        assert np.isclose(float(optimizer.learning_rate), 3e-4)
        assert (optimizer.beta_1, optimizer.beta_2) == (0.4, 0.8)
    # Slots exist for exactly the generator+extractor and the critics.
    assert len(model.g_optimizer._trainable_variables) == len(model.generator_variables)
    assert len(model.d_optimizer._trainable_variables) == len(model.critic_variables)
    assert model.optimizer is None  # no unused Keras optimizer in the checkpoints
    assert model.jit_compile is False  # Keras would turn XLA on by itself on a GPU
    assert all(v.dtype == "float32" for v in model.weights)


def test_build_piigan_precision_and_switches_reach_the_networks(config):
    model = build_piigan(config, "bfloat16", fast_paths=False, native_dilation=False)
    assert model.precision == "bfloat16"
    for net in (model.generator, model.extractor, model.local_critic, model.global_critic):
        assert net.compute_dtype == "bfloat16"
        assert all(layer.compute_dtype == "bfloat16" for layer in net._flatten_layers()
                   if isinstance(layer, keras.layers.Conv2D))
    assert all(v.dtype == "float32" for v in model.weights)
    assert model.generator.fast_paths is False and model.generator.native_dilation is False


def test_float16_gets_loss_scaling_and_refuses_gradient_clipping(config):
    g, d = build_optimizers(config, "float16")
    assert isinstance(g, keras.optimizers.LossScaleOptimizer) and g.name == "g_optimizer"
    assert isinstance(d, keras.optimizers.LossScaleOptimizer) and d.name == "d_optimizer"
    assert type(build_optimizers(config, "bfloat16")[0]) is keras.optimizers.Adam
    try:
        with pytest.raises(ValueError, match="GRADIENT_CLIP"):
            build_piigan(config.replace(GRADIENT_CLIP=True), "float16")
    except MixedPrecisionUnavailable as e:  # this TensorFlow cannot train float16 here
        pytest.skip(str(e))


def test_training_dataset_elements_and_exact_start(config, files):
    k, b = config.D_STEPS + 1, config.BATCH_SIZE
    (h, w), (bh, bw) = config.img_hw, config.box_hw
    from_zero = list(training_dataset(config, files).take(4))
    element = from_zero[0]
    assert element["images"].shape == (k, b, h, w, 3)
    assert element["masks"].shape == (k, b, h, w, 1) and element["boxes"].shape == (k, b, 4)
    assert element["z"].shape == (k, b, h, w, 1) and element["alpha"].shape == (k, b, 2)
    assert element["eps"].shape == (b, bh * bw)
    # A run resumed at step 3 reads what the uninterrupted one read at step 3.
    resumed = next(iter(training_dataset(config, files, start_batch=3)))
    for key in element:
        np.testing.assert_array_equal(resumed[key].numpy(), from_zero[3][key].numpy(), key)
    # Another noise seed: the same images and holes, other noise.
    other = next(iter(training_dataset(config, files, noise_seed=config.SEED + 1)))
    np.testing.assert_array_equal(other["images"].numpy(), element["images"].numpy())
    np.testing.assert_array_equal(other["masks"].numpy(), element["masks"].numpy())
    assert not np.array_equal(other["z"].numpy(), element["z"].numpy())
    # A global batch for two replicas.
    assert next(iter(training_dataset(config, files, batch_size=2 * b)))["images"].shape[1] == 2 * b


def test_validation_batch_is_the_centre_box(config, files):
    batch = validation_batch(config, files, size=3)
    (h, w), (bh, bw) = config.img_hw, config.box_hw
    assert batch["images"].shape == (3, h, w, 3)
    masks = batch["masks"].numpy()
    top, left = (h - bh) // 2, (w - bw) // 2
    expected = np.zeros((h, w, 1), np.float32)
    expected[top:top + bh, left:left + bw] = 1
    for m in masks:
        np.testing.assert_array_equal(m, expected)
    assert validation_batch(config, [], size=3) is None


def _calls(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text())
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == name]


def test_every_caller_builds_through_the_builders():
    """Optimizers and the training stream are made in builders.py only, so a
    benchmark or a conversion runs what train.py runs."""
    sources = (list((ROOT / "piigan_tf").rglob("*.py")) + list((ROOT / "bench").glob("*.py"))
               + [ROOT / name for name in ("train.py", "test.py", "evaluate.py", "export.py")])
    allowed = {"default_optimizer": {"builders.py", "model.py"},
               "add_training_noise": {"builders.py", "noise.py"},
               "LossScaleOptimizer": {"builders.py"}}
    found = {name: sorted(f"{p.relative_to(ROOT)}:{line}" for p in sources
                          if p.name not in ok for line in _calls(p, name))
             for name, ok in allowed.items()}
    assert found == {name: [] for name in allowed}


def test_keras_fit_runs_the_same_steps_as_the_training_loop(config, files):
    """On one machine a user's own ``model.fit`` on a built model trains what train.py trains."""
    cfg = config.replace(D_STEPS=1)
    keras.utils.set_random_seed(5)
    by_fit = build_piigan(cfg)
    keras.utils.set_random_seed(5)
    by_step = build_piigan(cfg)
    for a, b in zip(by_fit.weights, by_step.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    by_fit.fit(training_dataset(cfg, files), epochs=1, steps_per_epoch=2, verbose=0,
               shuffle=False)
    step = tf.function(by_step.train_step)
    for data in training_dataset(cfg, files).take(2):
        step(data)
    assert int(by_fit.g_optimizer.iterations) == int(by_step.g_optimizer.iterations) == 2
    for a, b in zip(by_fit.weights, by_step.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=2e-4, err_msg=a.path)
