"""SavedModel export for TF Serving: writes the serving graph of :mod:`piigan_tf.serving`.

``export_saved_model()`` writes ``export/piigan/<version>/`` (version = the
next integer, as TF Serving expects) with the signatures ``serving_default``
(uint8 arrays in and out), ``sample_bytes`` (PNG/JPEG strings in, PNG strings
out) and ``complete_with_noise`` (explicit noise); their inputs, outputs and
the noise rule are described in :mod:`piigan_tf.serving`. Only core
TensorFlow ops are used (no ``py_func``), which the export checks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import tensorflow as tf

from piigan_tf.blending import model_blend
from piigan_tf.loading import (CheckpointNotFoundError, default_model_dir, load_generator,
                               no_checkpoint_message)
from piigan_tf.serving import (MAX_SAMPLES, PYTHON_OPS, InpaintingModule,  # noqa: F401
                               graph_op_types)

log = logging.getLogger("piigan_tf")

#: Default estimated peak a served request may reach (bytes): a share of a
#: server, which answers several requests at once (export.py --max_memory).
MAX_REQUEST_MEMORY = 8e9

__all__ = ["export_saved_model", "next_version", "InpaintingModule", "PYTHON_OPS",
           "graph_op_types"]


def next_version(export_dir: str | os.PathLike) -> int:
    """1 + the highest numbered version folder in ``export_dir`` (1 if none)."""
    export_dir = Path(export_dir)
    versions = [int(p.name) for p in export_dir.glob("*") if p.is_dir() and p.name.isdigit()] \
        if export_dir.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(export_dir: str | os.PathLike = "export/piigan",
                       checkpoint_dir: str | os.PathLike | None = None, *,
                       generator=None, config=None, version: int | None = None,
                       max_samples: int = MAX_SAMPLES, window: int | None = None,
                       max_memory: float | None = MAX_REQUEST_MEMORY,
                       blend: str | None = None,
                       checkpoint_root: str | os.PathLike = "checkpoints") -> Path:
    """Writes a versioned SavedModel that TF Serving loads as is.

    Args:
        export_dir: the model's base folder; the model goes to
            ``export_dir/<version>``.
        checkpoint_dir: training checkpoint folder; default the most recent
            under ``checkpoint_root``. Ignored when ``generator`` is given.
        generator: export this (built) generator instead of loading one.
        config: the training config, written to ``assets.extra/config.yml``
            (taken from the checkpoint when loading one).
        version: version number; default :func:`next_version`.
        max_samples: largest ``num_samples`` a request may ask for.
        window: least window side of the graph's windowing (default: the
            model's, :func:`piigan_tf.windows.default_window`); written to
            ``assets.extra/windows.json`` with the margin and memory limit.
        max_memory: estimated peak (bytes) a request may reach; a larger one
            is answered INVALID_ARGUMENT with what to lower, an image too
            large to decode is refused before decoding (None: no limit).
        blend: how generated pixels join the known ones
            (:data:`piigan_tf.blending.BLENDS`), part of the graph; written
            to ``windows.json`` too. None: the config's ``BLEND`` (paste
            without a config).

    Returns:
        The version folder.

    Raises:
        CheckpointNotFoundError: no checkpoint to export.
        FileExistsError: ``version`` already exists.
        RuntimeError: the graph contains a Python op (cannot be served).
    """
    export_dir = Path(export_dir)
    version = next_version(export_dir) if version is None else int(version)
    target = export_dir / str(version)
    if target.exists():
        raise FileExistsError(f"{target} already exists; TF Serving versions are immutable, "
                              "choose another version")
    if generator is None:
        if checkpoint_dir is None:
            checkpoint_dir = default_model_dir(checkpoint_root)
            if checkpoint_dir is None:
                raise CheckpointNotFoundError(no_checkpoint_message(f"{checkpoint_root}/"))
        generator, config, path = load_generator(checkpoint_dir)
        log.info("exporting %s", path)
    module = InpaintingModule(generator, max_samples=max_samples,
                              train_hw=config.img_hw if config is not None else None,
                              window=window, max_memory=max_memory,
                              blend=model_blend(blend, config))
    signatures = module.signatures()
    # Write next to the target and rename: TF Serving polls export_dir and
    # must never see a half-written version.
    export_dir.mkdir(parents=True, exist_ok=True)
    tmp = export_dir / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        python_ops = graph_op_types(tmp) & PYTHON_OPS
        if python_ops:
            raise RuntimeError(f"the exported graph contains Python ops {sorted(python_ops)}; "
                               "TF Serving cannot run it")
        if config is not None:
            config.dump(tmp / "assets.extra" / "config.yml")
        (tmp / "assets.extra").mkdir(exist_ok=True)
        (tmp / "assets.extra" / "windows.json").write_text(json.dumps(
            {"window": module.window, "margin": module.margin, "max_memory": module.max_memory,
             "blend": module.blend}))
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
