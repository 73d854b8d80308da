"""Malformed sampling and serving requests: a readable error or documented handling, never a crash.

Each request goes to the live model (``Inpainter.from_checkpoint``), to the
exported SavedModel through ``Inpainter.from_saved_model``, and, for what the
Python API cannot even express, straight to the SavedModel's
``serving_default`` signature as a TF Serving client would send it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from piigan_tf.config import load_config  # noqa: E402
from piigan_tf.export import export_saved_model  # noqa: E402
from piigan_tf.inference import MAX_SAMPLES, Inpainter  # noqa: E402
from piigan_tf.model import PiiGAN  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``{"live": Inpainter, "saved": Inpainter}`` and the raw serving signature."""
    root = tmp_path_factory.mktemp("serving")
    config = load_config(preset="tiny")
    keras.utils.set_random_seed(11)
    model = PiiGAN.from_config_object(config)
    model.compile()
    for v in model.generator.weights:  # "trained": no weight equals a fresh initialisation
        v.assign(v + 0.01)
    checkpoint = tf.train.Checkpoint(model=model, g_optimizer=model.g_optimizer,
                                     d_optimizer=model.d_optimizer)
    tf.train.CheckpointManager(checkpoint, str(root / "ckpt"), 3).save(checkpoint_number=1)
    config.dump(root / "ckpt" / "config.yml")  # as train.py writes it
    live = Inpainter.from_checkpoint(root / "ckpt")
    version = export_saved_model(root / "export", checkpoint_dir=root / "ckpt")
    saved = Inpainter.from_saved_model(root / "export")
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    return {"live": live, "saved": saved}, signature


def image(h=12, w=20, batch=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)


def box_mask(h=12, w=20, batch=1):
    mask = np.zeros((batch, h, w, 1), np.uint8)
    mask[:, 2:9, 4:15] = 255
    return mask


@pytest.mark.parametrize("kind", ["live", "saved"])
@pytest.mark.parametrize("images, masks, kwargs, message", [
    (np.zeros((2, 1, 8, 8, 3), np.uint8), np.zeros((8, 8)), {}, "shape"),            # rank 5
    (np.zeros((8,), np.uint8), np.zeros((8, 8)), {}, "shape"),                        # rank 1
    (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8)), {}, "RGBA"),                    # channels
    (np.zeros((8, 8, 2), np.uint8), np.zeros((8, 8)), {}, "RGB"),
    (np.zeros((8, 8), np.uint8), np.zeros((8, 8)), {}, "greyscale"),
    (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8)), {}, "uint8"),                 # dtype
    (np.full((8, 8, 3), 300, np.int32), np.zeros((8, 8)), {}, "uint8"),
    (np.zeros((8, 8, 3), np.complex64), np.zeros((8, 8)), {}, "uint8"),
    (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0)), {}, "empty"),                   # empty
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9)), {}, "differs from image size"),  # mask
    (np.zeros((3, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 1)), {}, "2 masks for 3 images"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3)), {}, "masks must be"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), {"num_samples": 0}, "num_samples"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), {"num_samples": 2.5}, "num_samples"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), {"seed": 2**40}, "seed"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), {"z": np.zeros((1, 2, 8, 7, 1))},
     "z must be"),
])
def test_malformed_requests_get_a_readable_error(models, kind, images, masks, kwargs, message):
    inpainter = models[0][kind]
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match=message):
        inpainter.sample(images, masks, **kwargs)


def test_the_exported_model_caps_samples_per_request(models):
    """A server allocates B * num_samples images per request: the SavedModel caps it.

    (In-process, ``Inpainter.from_checkpoint`` has no cap: memory is the limit.)
    """
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                       match=f"num_samples must be in 1..{MAX_SAMPLES}"):
        models[0]["saved"].sample(image(), box_mask(), num_samples=MAX_SAMPLES + 1, seed=0)


@pytest.mark.parametrize("kind", ["live", "saved"])
def test_mask_without_hole_returns_the_image_and_full_mask_is_filled(models, kind):
    inpainter = models[0][kind]
    images = image(batch=2)
    out = inpainter.sample(images, np.zeros((12, 20), bool), num_samples=3, seed=0)
    np.testing.assert_array_equal(out, np.repeat(images[:, None], 3, axis=1))
    # All hole: nothing known to copy; every pixel is generated, without error.
    out = inpainter.sample(images, np.ones((12, 20), bool), num_samples=3, seed=0)
    assert out.shape == (2, 3, 12, 20, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[:, 0], images)


@pytest.mark.parametrize("kind", ["live", "saved"])
@pytest.mark.parametrize("hw", [(1, 1), (1, 37), (50, 3)])
def test_degenerate_sizes_come_back_at_their_size(models, kind, hw):
    out = models[0][kind].sample(image(*hw), np.ones(hw, np.uint8), num_samples=2, seed=1)
    assert out.shape == (1, 2, *hw, 3)


def test_nonfinite_noise_is_refused_or_yields_valid_pixels(models):
    """z with NaN/Inf is not rejected (docs/reliability.md): the output must still be
    a valid uint8 image with the known pixels untouched."""
    images, masks = image(), box_mask()
    for bad in (np.nan, np.inf):
        z = np.full((1, 2, 12, 20, 1), bad, np.float32)
        try:
            out = models[0]["live"].sample(images, masks, z=z)
        except (ValueError, tf.errors.InvalidArgumentError) as error:
            assert "z" in str(error)
            continue
        assert out.dtype == np.uint8 and out.shape == (1, 2, 12, 20, 3)
        known = np.repeat(masks == 0, 3, axis=-1)
        np.testing.assert_array_equal(out[0, 0][known[0]], images[0][known[0]])


def _request(images=None, masks=None, num_samples=1, seed=0):
    return {"images": tf.zeros([1, 8, 8, 3], tf.uint8) if images is None else images,
            "masks": tf.zeros([1, 8, 8, 1], tf.uint8) if masks is None else masks,
            "num_samples": tf.constant(num_samples, tf.int32),
            "seed": tf.constant(seed, tf.int32)}


@pytest.mark.parametrize("request_, message", [
    (_request(images=tf.zeros([8, 8, 3], tf.uint8)), "images must be uint8 RGB"),
    (_request(images=tf.zeros([1, 8, 8, 4], tf.uint8)), "images must be uint8 RGB"),
    (_request(masks=tf.zeros([1, 8, 8], tf.uint8)), "masks must be uint8"),
    (_request(masks=tf.zeros([1, 9, 8, 1], tf.uint8)), "height and width"),
    (_request(images=tf.zeros([0, 8, 8, 3], tf.uint8), masks=tf.zeros([0, 8, 8, 1], tf.uint8)),
     "at least one image"),
    (_request(num_samples=0), "num_samples must be in"),
    (_request(num_samples=MAX_SAMPLES + 1), "num_samples must be in"),
    (_request(num_samples=[1, 2]), "num_samples must be a scalar"),
])
def test_serving_signature_validates_its_inputs(models, request_, message):
    """What a TF Serving client can send that the Python API would have caught."""
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        models[1](**request_)


def test_serving_signature_refuses_wrong_dtypes(models):
    signature = models[1]
    for request_ in (_request(images=tf.zeros([1, 8, 8, 3], tf.float32)),
                     dict(_request(), num_samples=tf.constant(1.5))):
        with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
            signature(**request_)
    # A good request after the bad ones still works: nothing was left broken.
    out = signature(**_request(num_samples=2))["completions"]
    assert out.shape == (1, 2, 8, 8, 3) and out.dtype == tf.uint8
