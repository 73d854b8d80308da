"""SavedModel export for TF Serving: uint8 in, uint8 out, all processing in the graph.

``export_saved_model()`` writes ``export/piigan/<version>/`` (version = the
next integer, as TF Serving expects), with two signatures:

``serving_default``
    inputs  ``images``      uint8 ``[batch, H, W, 3]`` RGB, any H and W
            ``masks``       uint8 ``[batch, H, W, 1]`` (or ``[1, H, W, 1]`` for
                            all images), non-zero = hole
            ``num_samples`` int32 scalar, 1..``max_samples``
            ``seed``        int32 scalar; ``>= 0`` reproducible, ``< 0`` random
    output  ``completions`` uint8 ``[batch, num_samples, H, W, 3]``

``complete_with_noise``
    inputs  ``images``, ``masks`` as above, ``z`` float32 ``[batch, N, H, W, 1]``
    output  ``completions`` uint8 ``[batch, N, H, W, 3]``

The inputs are declared with unknown shape on purpose: TF Serving does not
check request shapes against the signature, so the graph checks them itself
(``piigan_tf.inference.check_inputs``) and answers a malformed request with
INVALID_ARGUMENT and a message saying what was expected. The scalars also
accept ``[batch]`` vectors of one repeated value, which is what the REST
"instances" format sends. Only core TensorFlow ops are used (no ``py_func``),
so ``tensorflow_model_server`` runs the model as is; :func:`graph_op_types`
lists them for the tests.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import tensorflow as tf

from piigan_tf.inference import (MAX_SAMPLES, CheckpointNotFoundError, _no_checkpoint_message,
                                 check_inputs, check_noise, complete_with_noise,
                                 default_model_dir, load_generator, sample_noise,
                                 scalar_input)

log = logging.getLogger("piigan_tf")

#: Ops that call back into Python: a SavedModel holding one cannot be served.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})

_IMAGES = tf.TensorSpec(None, tf.uint8, name="images")
_MASKS = tf.TensorSpec(None, tf.uint8, name="masks")


class _Untracked:
    """Holds an object without making it a SavedModel dependency."""

    def __init__(self, value):
        self.value = value


class InpaintingModule(tf.Module):
    """The exported computation: the generator plus pre/post-processing.

    ``sample`` and ``complete_with_noise`` are compiled once for all input
    shapes (``tf.function`` with unknown-shape signatures).
    ``Inpainter.from_checkpoint`` runs these same functions, so live and
    exported models give identical numbers.

    Args:
        generator: a built ``piigan_tf.networks.Generator``.
        max_samples: largest ``num_samples`` a request may ask for.
    """

    def __init__(self, generator, max_samples: int = MAX_SAMPLES):
        super().__init__(name="piigan_inpainting")
        # Track the tf.Variables behind the generator's Keras variables, not the
        # Keras model: a Keras 3 variable exports as a *copy* of its tf.Variable,
        # so the session-based loaders (tensorflow_model_server, saved_model_cli)
        # would restore the copy while the functions read the original, never
        # initialised ("Could not find variable", keras-team/keras#20095).
        # Keras's ExportArchive tracks the captured tf.Variables the same way.
        self._holder = _Untracked(generator)
        self.generator_variables = [v.value for v in generator.weights]
        self.max_samples = int(max_samples)
        # The compiled functions are kept out of the module's attributes: the
        # SavedModel holds them as its signatures only (tf.saved_model.save
        # would otherwise trace every tf.function attribute once more).
        self._compiled = _Untracked({
            "sample": tf.function(self._sample, input_signature=[
                _IMAGES, _MASKS, tf.TensorSpec(None, tf.int32, name="num_samples"),
                tf.TensorSpec(None, tf.int32, name="seed")]),
            "complete_with_noise": tf.function(self._complete_with_noise, input_signature=[
                _IMAGES, _MASKS, tf.TensorSpec(None, tf.float32, name="z")]),
        })

    @property
    def generator(self):
        return self._holder.value

    def sample(self, images, masks, num_samples, seed) -> dict:
        """``{"completions": uint8 [B, N, H, W, 3]}``; see the module docstring."""
        return self._compiled.value["sample"](images, masks, num_samples, seed)

    def complete_with_noise(self, images, masks, z) -> dict:
        """Completions for explicit noise z ``[B, N, H, W, 1]``: ``{"completions": ...}``."""
        return self._compiled.value["complete_with_noise"](images, masks, z)

    def signatures(self) -> dict:
        """The SavedModel signatures: ``serving_default`` and ``complete_with_noise``."""
        return {name: self._compiled.value[key].get_concrete_function()
                for name, key in (("serving_default", "sample"),
                                  ("complete_with_noise", "complete_with_noise"))}

    def _sample(self, images, masks, num_samples, seed):
        images, masks = check_inputs(images, masks)
        n = scalar_input(num_samples, "num_samples")
        seed = scalar_input(seed, "seed")
        n_ok = tf.debugging.Assert(
            tf.logical_and(n >= 1, n <= self.max_samples),
            [f"num_samples must be in 1..{self.max_samples}; got", n], summarize=8,
            name="check_num_samples")
        with tf.control_dependencies([n_ok]):
            n = tf.identity(n)
        # seed < 0: a fresh seed per request (RandomUniformInt is a core op).
        seed = tf.where(seed < 0, tf.random.uniform([], 0, 2**31 - 1, dtype=tf.int32), seed)
        shape = tf.shape(images)
        z = sample_noise(seed, shape[0], n, shape[1], shape[2])
        return {"completions": complete_with_noise(self.generator, images, masks, z)}

    def _complete_with_noise(self, images, masks, z):
        images, masks = check_inputs(images, masks)
        z = check_noise(z, images)
        return {"completions": complete_with_noise(self.generator, images, masks, z)}


def next_version(export_dir: str | os.PathLike) -> int:
    """1 + the highest numbered version folder in ``export_dir`` (1 if none)."""
    export_dir = Path(export_dir)
    versions = [int(p.name) for p in export_dir.glob("*") if p.is_dir() and p.name.isdigit()] \
        if export_dir.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(export_dir: str | os.PathLike = "export/piigan",
                       checkpoint_dir: str | os.PathLike | None = None, *,
                       generator=None, config=None, version: int | None = None,
                       max_samples: int = MAX_SAMPLES,
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
                raise CheckpointNotFoundError(_no_checkpoint_message(f"{checkpoint_root}/"))
        generator, config, path = load_generator(checkpoint_dir)
        log.info("exporting %s", path)
    module = InpaintingModule(generator, max_samples=max_samples)
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
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def graph_op_types(saved_model_dir: str | os.PathLike) -> set[str]:
    """All op types in a SavedModel: its graphs and every function they call."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops
