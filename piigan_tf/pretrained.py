"""Shipped models: generator weights in a small file, loadable like a checkpoint.

A model folder such as ``pretrained/celeba64/`` holds

* ``generator.npz``: the generator's weights (what sampling needs), one array
  per variable keyed by its path (``inpaint_net/conv1/kernel``), stored as
  float16 by default (half the size; sampling computes in float32);
* ``config.yml``: the training config (image and hole sizes come from it);
* ``PROVENANCE.md``: data, iterations, command and evaluation;
* ``check.json``: figures of a known output (:func:`output_statistics`),
  which the tests compare against, so that a change that breaks loading or
  the network fails.

``piigan_tf.loading`` reads such a folder (``load_generator``, and so
``Inpainter.from_checkpoint``, ``test.py``, ``evaluate.py`` and ``export.py``,
accept it wherever they accept a training checkpoint folder); this module
makes one. From a training run::

    python -m piigan_tf.cli.pretrained --checkpoint_dir checkpoints/celeba64 --out pretrained/celeba64
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from piigan_tf.loading import PROVENANCE_FILE, WEIGHTS_FILE, load_generator, weight_key


def save_generator_weights(generator, path: str | os.PathLike, dtype: str = "float16") -> Path:
    """Writes the generator's weights to an ``.npz`` file (atomically).

    Args:
        generator: a built ``piigan_tf.networks.Generator``.
        path: the file to write.
        dtype: storage type, ``float16`` (default) or ``float32``.

    Raises:
        ValueError: a weight does not fit in float16 (it would load as inf).
    """
    path = Path(path)
    arrays = {}
    for variable in generator.weights:
        value = np.asarray(variable.numpy(), np.float32)
        stored = value.astype(dtype)
        if not np.all(np.isfinite(stored)):
            raise ValueError(f"{weight_key(generator, variable)} does not fit in {dtype}; save as float32")
        arrays[weight_key(generator, variable)] = stored
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    tmp.replace(path)
    return path


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


CHECK_FILE = "check.json"
CHECK_SEED = 0
CHECK_SAMPLES = 4


def output_statistics(inpainter) -> dict:
    """Figures of a known output: the model's example image, its centre hole, seed 0.

    ``mean`` and ``std`` are per sample and channel over the hole's pixels
    (uint8 levels): a later change that breaks loading or the network moves
    them by tens of levels, while CPUs and kernel paths differ by far less
    than one level.
    """
    from piigan_tf.inference import center_box_mask, example_images

    config = inpainter.config
    name, image = example_images(config, 1)[0]
    mask = center_box_mask(image.shape[:2], config.box_hw)
    samples = inpainter.sample(image, mask, CHECK_SAMPLES, seed=CHECK_SEED)[0]
    hole = samples[:, mask[..., 0] > 0].astype(np.float64)  # [N, pixels, 3]
    return {"image": name, "hole_box": list(config.box_hw), "seed": CHECK_SEED,
            "num_samples": CHECK_SAMPLES,
            "mean": np.round(hole.mean(axis=1), 3).tolist(),
            "std": np.round(hole.std(axis=1), 3).tolist()}


def write_check(folder: str | os.PathLike) -> Path:
    """Writes ``folder/check.json``: :func:`output_statistics` of the folder's model."""
    from piigan_tf.inference import Inpainter

    path = Path(folder) / CHECK_FILE
    path.write_text(json.dumps(output_statistics(Inpainter.from_checkpoint(folder)), indent=1) + "\n")
    return path


def make_model_folder(checkpoint_dir: str | os.PathLike, out: str | os.PathLike,
                      dtype: str = "float16") -> Path:
    """Writes ``generator.npz`` and ``config.yml`` of a training run's latest checkpoint.

    Returns:
        The weights file written.
    """
    from piigan_tf.checkpoints import checkpoint_step

    generator, config, source = load_generator(checkpoint_dir)
    out = Path(out)
    weights = save_generator_weights(generator, out / WEIGHTS_FILE, dtype)
    config.dump(out / "config.yml")
    write_check(out)
    provenance = out / PROVENANCE_FILE
    if not provenance.exists():  # a shipped model's is written by hand; keep it
        provenance.write_text(
            f"# {out.name}\n\nGenerator weights ({dtype}) of `{source}`, training step "
            f"{checkpoint_step(source)}, dataset `{config.DATASET}`, "
            f"{config.img_hw[0]}x{config.img_hw[1]} images, {config.HEIGHT}x{config.WIDTH} hole box.\n")
    print(f"{source} -> {weights} ({weights.stat().st_size / 1e6:.1f} MB, {dtype}, "
          f"sha256 {file_sha256(weights)[:16]}...) and {out / 'config.yml'}")
    return weights
