"""Finding and loading a model: every way a model is named, and what goes wrong.

A model is named as

* a training checkpoint folder (its newest checkpoint) or one checkpoint
  (``checkpoints/sample/ckpt-40``): :func:`load_generator`;
* a shipped model folder (``pretrained/celeba64``: ``generator.npz`` +
  ``config.yml``, made by ``piigan_tf.pretrained.make_model_folder``), taken
  wherever a checkpoint folder is: :func:`load_generator`;
* nothing: the newest checkpoint folder under ``checkpoints/``, else the
  shipped model :data:`PRETRAINED_DIR` (:func:`default_model_dir`);
* an exported SavedModel, its version folder or its base folder
  (:func:`resolve_saved_model`).

Errors: :class:`CheckpointNotFoundError` (nothing there; says how to train),
:class:`PretrainedModelError` (a model folder's file is missing, truncated or
does not fit), ``RuntimeError`` (a checkpoint without the generator's
weights), ``FileNotFoundError`` (no SavedModel). What TensorFlow's checkpoint
files are called is ``piigan_tf.checkpoints``' business.
"""

from __future__ import annotations

import logging
import os
import site
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

# TensorFlow (and piigan_tf.checkpoints, which imports it) load inside the
# functions that read checkpoints: the names and folders here are known
# without it, so a command can say what is missing at once.

log = logging.getLogger("piigan_tf")

__all__ = ["CheckpointNotFoundError", "PRETRAINED_DIR", "PretrainedModelError", "shipped_model_dirs",
           "default_model_dir", "is_model_folder", "latest_checkpoint_dir", "load_generator",
           "load_generator_weights", "no_checkpoint_message", "resolve_saved_model",
           "weight_key"]

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


def shipped_model_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """The shipped model folders (``pretrained/<name>/`` with weights), sorted by name.

    ``root`` defaults to the folder holding :data:`PRETRAINED_DIR` (the
    checkout's ``pretrained/``, or an installed package's copy).
    """
    root = Path(root) if root is not None else PRETRAINED_DIR.parent
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / WEIGHTS_FILE).is_file())


class PretrainedModelError(RuntimeError):
    """A model folder's file is missing, truncated or does not fit the network."""


def is_model_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a shipped model folder (weights or provenance file there)."""
    return (Path(path) / WEIGHTS_FILE).is_file() or (Path(path) / PROVENANCE_FILE).is_file()


class CheckpointNotFoundError(FileNotFoundError):
    """No trained checkpoint where one was expected."""


# ------------------------------------------------------- shipped model folders
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
        key = weight_key(generator, variable)
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
            variable.assign(archive[weight_key(generator, variable)].astype(np.float32))


def weight_key(generator, variable) -> str:
    """A weight's name from the generator down (``inpaint_net/conv1/kernel``).

    Independent of what the generator was built inside (``piigan/`` when the
    whole model was built).
    """
    prefix = f"{generator.name}/"
    path = variable.path
    return path[path.index(prefix):] if prefix in path else path

# ------------------------------------------------------------------ any model
def latest_checkpoint_dir(root: str | os.PathLike = "checkpoints") -> Path | None:
    """The most recently written checkpoint folder under ``root`` (None if none);
    see ``piigan_tf.checkpoints.latest_checkpoint_dir``."""
    from piigan_tf import checkpoints

    return checkpoints.latest_checkpoint_dir(root)


def default_model_dir(root: str | os.PathLike = "checkpoints") -> Path | None:
    """The model to use when none is named: the newest checkpoint folder under
    ``root``, else the shipped pretrained model (``pretrained/celeba64``), else None."""
    found = latest_checkpoint_dir(root)
    if found is None and is_model_folder(PRETRAINED_DIR):
        found = PRETRAINED_DIR
    return found


def no_checkpoint_message(where: str) -> str:
    return (f"no trained checkpoint found in {where}. Train a model first, e.g. "
            "`python train.py --preset quick` (a few minutes on CPU; writes "
            "checkpoints/sample/), or pass --checkpoint_dir DIR / --saved_model DIR.")


def load_generator(checkpoint_dir: str | os.PathLike):
    """Builds the generator and restores it from a training checkpoint folder.

    ``checkpoint_dir`` may also name one checkpoint (``checkpoints/sample/ckpt-40``)
    instead of the folder's latest.

    Returns:
        ``(generator, config, checkpoint_path)``.

    Raises:
        CheckpointNotFoundError: no checkpoint in the folder.
        RuntimeError: the checkpoint lacks generator weights;
            ``PretrainedModelError`` (a RuntimeError): a model folder's file is
            missing, truncated or does not fit.
    """
    import tensorflow as tf

    from piigan_tf.checkpoints import checkpoint_to_load
    from piigan_tf.config import load_config
    from piigan_tf.model import PiiGAN

    checkpoint_dir = Path(checkpoint_dir)
    if is_model_folder(checkpoint_dir):
        config_file = checkpoint_dir / "config.yml"
        if not config_file.is_file():
            raise PretrainedModelError(
                f"{config_file} is missing: the model folder {checkpoint_dir} needs the config "
                f"it was trained with (restore it, e.g. `git checkout -- {config_file}`)")
        config = load_config(config_file)
        generator = PiiGAN.from_config_object(config).generator
        h, w = config.img_hw
        generator.build([(None, h, w, 3), (None, h, w, 1), (None, h, w, 1)])
        weights = checkpoint_dir / WEIGHTS_FILE
        load_generator_weights(generator, weights)
        return generator, config, str(weights)
    path, checkpoint_dir = checkpoint_to_load(checkpoint_dir)
    if not path:
        raise CheckpointNotFoundError(no_checkpoint_message(str(checkpoint_dir)))
    config_file = checkpoint_dir / "config.yml"
    if config_file.exists():
        config = load_config(config_file)
    else:
        log.warning("%s has no config.yml; using the default configuration", checkpoint_dir)
        config = load_config()
    model = PiiGAN.from_config_object(config)
    model.build()
    generator = model.generator
    # Kernels are random at init: one still equal to its initial value after
    # restoring was not in the checkpoint. expect_partial() alone would hide
    # that and give a network that paints noise.
    before = {id(v): v.numpy() for v in generator.weights if len(v.shape) > 1}
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    missing = [v.path for v in generator.weights
               if id(v) in before and np.array_equal(before[id(v)], v.numpy())]
    if missing:
        raise RuntimeError(
            f"checkpoint {path} does not hold {len(missing)} of the generator's weights "
            f"(e.g. {', '.join(missing[:3])}); was it written by this version of piigan_tf?")
    return generator, config, path

def resolve_saved_model(path: str | os.PathLike) -> Path:
    """A SavedModel folder: ``path`` itself, or its highest numbered version.

    Raises:
        FileNotFoundError: no ``saved_model.pb`` there (the message says how to export).
    """
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((int(p.name) for p in path.glob("*")
                       if p.name.isdigit() and (p / "saved_model.pb").is_file()),
                      reverse=True) if path.is_dir() else []
    if versions:
        return path / str(versions[0])
    raise FileNotFoundError(f"no SavedModel (saved_model.pb) in {path} or a numbered version "
                            "folder below it; export one with `python export.py`")
