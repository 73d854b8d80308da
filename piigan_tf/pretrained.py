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

``load_generator`` (and so ``Inpainter.from_checkpoint``, ``test.py``,
``evaluate.py`` and ``export.py``) accepts such a folder wherever it accepts
a training checkpoint folder. Make one from a training run with::

    python -m piigan_tf.cli.pretrained --checkpoint_dir checkpoints/celeba64 --out pretrained/celeba64
"""

from __future__ import annotations

import hashlib
import json
import os
import site
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

WEIGHTS_FILE = "generator.npz"
PROVENANCE_FILE = "PROVENANCE.md"
#: Where a wheel installs the shipped model under its prefix (pyproject.toml's data-files).
SHARE_DIR = Path("share", "piigan_tf", "pretrained", "celeba64")


def shipped_model_dir(checkout: Path, prefixes: Iterable[str | None]) -> Path:
    """The checkout's model folder, else the first install prefix's copy of it.

    ``pip install .`` puts the model under ``<prefix>/share/piigan_tf/...``
    (``sys.prefix``, the scheme's data path, or the user base for ``--user``);
    an editable install and a plain checkout use the repository's own folder.
    With neither, the checkout's path, so that messages name where it belongs.
    """
    for folder in [checkout] + [Path(prefix) / SHARE_DIR for prefix in prefixes if prefix]:
        if (folder / WEIGHTS_FILE).is_file():
            return folder
    return checkout


#: The shipped face model (CelebA, 64x64); used when no checkpoint exists.
PRETRAINED_DIR = shipped_model_dir(
    Path(__file__).resolve().parent.parent / "pretrained" / "celeba64",
    (sys.prefix, sysconfig.get_path("data"), site.getuserbase()))


class PretrainedModelError(RuntimeError):
    """A model folder's file is missing, truncated or does not fit the network."""


def is_model_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a shipped model folder (weights or provenance file there)."""
    return (Path(path) / WEIGHTS_FILE).is_file() or (Path(path) / PROVENANCE_FILE).is_file()


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
            raise ValueError(f"{_key(generator, variable)} does not fit in {dtype}; save as float32")
        arrays[_key(generator, variable)] = stored
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    tmp.replace(path)
    return path


def load_generator_weights(generator, path: str | os.PathLike) -> None:
    """Sets a built generator's weights from ``save_generator_weights``' file.

    Raises:
        PretrainedModelError: the file is missing, truncated or corrupt, or
            its arrays do not match the network (one line naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise PretrainedModelError(f"{path} is missing: the model folder {path.parent} needs "
                                   f"its {WEIGHTS_FILE} (restore it, e.g. `git checkout -- {path}`)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise PretrainedModelError(
            f"{path} is truncated or corrupt ({type(e).__name__}: {e}); restore it, e.g. "
            f"`git checkout -- {path}`") from None
    problems = []
    for variable in generator.weights:
        key = _key(generator, variable)
        stored = arrays.pop(key, None)
        if stored is None:
            problems.append(f"no {key}")
        elif tuple(stored.shape) != tuple(variable.shape):
            problems.append(f"{key} is {list(stored.shape)}, the network's {list(variable.shape)}")
    if arrays:
        problems.append(f"{len(arrays)} arrays the network does not have (e.g. {next(iter(arrays))})")
    if problems:
        raise PretrainedModelError(
            f"{path} does not fit the generator built from {path.parent / 'config.yml'}: "
            + "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""))
    # Assigned only once all arrays are known to fit: no half-loaded network.
    with np.load(path, allow_pickle=False) as archive:
        for variable in generator.weights:
            variable.assign(archive[_key(generator, variable)].astype(np.float32))


def _key(generator, variable) -> str:
    """A weight's name from the generator down (``inpaint_net/conv1/kernel``).

    Independent of what the generator was built inside (``piigan/`` when the
    whole model was built).
    """
    prefix = f"{generator.name}/"
    path = variable.path
    return path[path.index(prefix):] if prefix in path else path


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
    from piigan_tf.inference import load_generator

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
