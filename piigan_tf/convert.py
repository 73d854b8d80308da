"""Converts a checkpoint of the reference PiiGAN (TF1 + neuralgym) into a piigan_tf checkpoint.

The port keeps the reference's layer names, so every network variable maps
one to one by name; only the critics sit under another scope (the reference
builds both inside ``discriminator/`` and puts their Dense(1) heads beside,
not inside, ``discriminator_local``/``discriminator_global``). Kernels are
HWIO and dense kernels ``[in, out]`` in both, so values are copied unchanged
except for colour order: the reference reads images with OpenCV (BGR) and the
port uses RGB, so by default the colour axes of the first and last layers are
reversed (see ``bgr_to_rgb``), which makes the converted networks compute
exactly the reference's function on RGB data.

Example::

    python -m piigan_tf.cli.convert --tf1_checkpoint model_logs/celeba_snap \\
        --output checkpoints/celeba
    python train.py --dataset celeba          # resumes from the converted step
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from piigan_tf.config import Config, load_config

# TensorFlow is imported inside the functions that need it, so that the CLI
# answers --help and argument errors at once and can quieten TF's C++ logging
# before TF loads.

log = logging.getLogger("piigan_tf")

# The four networks: report key, attribute of PiiGAN, port scope (Keras name).
NETWORKS = (
    ("generator", "generator", "inpaint_net"),
    ("extractor", "extractor", "build_extractor"),
    ("local_critic", "local_critic", "discriminator_local"),
    ("global_critic", "global_critic", "discriminator_global"),
)

# Port prefix -> reference prefix, most specific first. Everything else in a
# name (layer names, kernel/bias) is the same on both sides.
PREFIX_MAP = (
    ("inpaint_net/", "inpaint_net/"),
    ("build_extractor/", "build_extractor/"),
    ("discriminator_local/dout_local_fc/", "discriminator/dout_local_fc/"),
    ("discriminator_global/dout_global_fc/", "discriminator/dout_global_fc/"),
    ("discriminator_local/", "discriminator/discriminator_local/"),
    ("discriminator_global/", "discriminator/discriminator_global/"),
)

# Top-level reference scopes that hold network variables.
REFERENCE_SCOPES = ("inpaint_net/", "build_extractor/", "discriminator/")

# Layers whose kernels touch image colour channels (port names). Input: the
# first 3 input channels are the image (the generator's stages take
# concat(image, z, ones, mask)). Output: the last conv of each generator stage.
COLOUR_INPUT_LAYERS = ("inpaint_net/conv1", "inpaint_net/xconv1", "inpaint_net/pmconv1",
                       "build_extractor/conv1", "discriminator_local/conv1",
                       "discriminator_global/conv1")
COLOUR_OUTPUT_LAYERS = ("inpaint_net/conv17", "inpaint_net/allconv17")

# Checkpoint entries that are not network weights, by category (checked in order).
_SKIP_CATEGORIES = (
    ("optimizer slots", re.compile(
        r"/(Adam|Momentum|RMSProp|Adagrad|Adadelta|Ftrl|ExponentialMovingAverage)(_\d+)?$")),
    ("optimizer state", re.compile(r"^beta[12]_power(_\d+)?$")),
    ("step counter", re.compile(r"^global_step$")),
    ("learning rate", re.compile(r"^lr$")),
)


class CheckpointMismatchError(ValueError):
    """The reference checkpoint's network variables do not match the model's.

    Attributes:
        missing: reference names the model needs but the checkpoint lacks.
        unexpected: reference network variables with no model counterpart.
        mismatched: ``(reference name, checkpoint shape, model shape)`` triples.
    """

    def __init__(self, checkpoint: str, missing, unexpected, mismatched, context: str = "",
                 hint: str = ""):
        self.checkpoint = checkpoint
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        lines = [f"reference checkpoint {checkpoint} does not match the piigan_tf model"
                 + (f" ({context})" if context else "") + ":"]
        if self.missing:
            lines.append(f"  {len(self.missing)} missing (model variable with no counterpart "
                         "in the checkpoint):")
            lines += [f"    {n}" for n in self.missing]
        if self.unexpected:
            lines.append(f"  {len(self.unexpected)} unexpected (reference network variable "
                         "the model lacks):")
            lines += [f"    {n}" for n in self.unexpected]
        if self.mismatched:
            lines.append(f"  {len(self.mismatched)} with a different shape (checkpoint vs "
                         "model):")
            lines += [f"    {n}: {list(c)} vs {list(m)}" for n, c, m in self.mismatched]
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------- names
def _relative_path(keras_path: str) -> str:
    """Drops anything before the network scope (e.g. the ``piigan/`` of the parent model)."""
    parts = keras_path.split(":")[0].split("/")
    roots = {scope for _, _, scope in NETWORKS}
    for i, part in enumerate(parts):
        if part in roots:
            return "/".join(parts[i:])
    raise ValueError(f"{keras_path!r} is not a variable of one of the PiiGAN networks "
                     f"({', '.join(sorted(roots))})")


def reference_name(keras_path: str) -> str:
    """Reference (TF1) checkpoint name of a port variable.

    Args:
        keras_path: ``variable.path``, with or without the parent model's
            prefix: ``piigan/discriminator_local/dout_local_fc/kernel`` or
            ``discriminator_local/dout_local_fc/kernel``.

    Returns:
        e.g. ``discriminator/dout_local_fc/kernel``.

    Raises:
        ValueError: the path is not inside one of the four networks.
    """
    rel = _relative_path(keras_path)
    for port, ref in PREFIX_MAP:
        if rel.startswith(port):
            return ref + rel[len(port):]
    raise ValueError(f"no reference name for {keras_path!r}")  # unreachable: roots cover the map


def port_name(reference: str) -> str:
    """Inverse of ``reference_name``: the port's path (without the parent model prefix).

    ``discriminator/discriminator_global/conv1/kernel`` ->
    ``discriminator_global/conv1/kernel``.

    Raises:
        ValueError: the name is not under a reference network scope.
    """
    for port, ref in sorted(PREFIX_MAP, key=lambda pr: -len(pr[1])):
        if reference.startswith(ref):
            return port + reference[len(ref):]
    raise ValueError(f"{reference!r} is not a reference network variable (expected a name "
                     f"under {', '.join(REFERENCE_SCOPES)})")


def skip_category(reference: str) -> str | None:
    """Why a checkpoint entry is not a network weight, or None if it may be one."""
    for category, pattern in _SKIP_CATEGORIES:
        if pattern.search(reference):
            return category
    if not reference.startswith(REFERENCE_SCOPES):
        return "other"
    return None


# --------------------------------------------------------------- checkpoints
def resolve_checkpoint(path: str | os.PathLike) -> str:
    """Turns a checkpoint prefix, one of its files, or a folder into a readable prefix.

    A folder is resolved through its ``checkpoint`` file. neuralgym writes
    absolute paths there, which break once the folder is moved or downloaded;
    the file name is then looked up inside the folder instead.

    Raises:
        FileNotFoundError: nothing readable at ``path`` (the message says what was tried).
    """
    p = Path(path)
    if p.is_dir():
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(p))
        if latest:
            return latest
        state_file = p / "checkpoint"
        if state_file.exists():
            state = tf.train.get_checkpoint_state(str(p))
            if state and state.model_checkpoint_path:
                moved = p / Path(state.model_checkpoint_path).name
                if Path(f"{moved}.index").exists():
                    return str(moved)
        indexes = sorted(p.glob("*.index"))
        if len(indexes) == 1:
            return str(indexes[0].with_suffix(""))
        if indexes:
            names = ", ".join(i.with_suffix("").name for i in indexes)
            raise FileNotFoundError(
                f"{p} holds several checkpoints ({names}) and no usable `checkpoint` file; "
                f"pass one prefix, e.g. --tf1_checkpoint {indexes[-1].with_suffix('')}")
        raise FileNotFoundError(f"no TensorFlow checkpoint in {p} (expected a `checkpoint` "
                                "file or <prefix>.index + <prefix>.data-* files)")
    prefix = p
    if ".data-" in p.name:
        prefix = p.with_name(p.name.split(".data-")[0])
    elif p.suffix in (".index", ".meta"):
        prefix = p.with_suffix("")
    if Path(f"{prefix}.index").exists():
        return str(prefix)
    raise FileNotFoundError(
        f"reference checkpoint {path} not found: pass the checkpoint prefix (the path of "
        f"<prefix>.index without .index, e.g. model_logs/run/snap-100000) or its folder")


def _size_hint(shapes: dict[str, list[int]]) -> str:
    """Guesses the checkpoint's image/box size from the shapes of the size-dependent layers."""
    def side(n):
        s = int(math.isqrt(int(n)))
        return s if s * s == n else None

    glob = shapes.get("discriminator/dout_global_fc/kernel")
    box = shapes.get("build_extractor/z/kernel")
    img_side = side(glob[0]) if glob else None       # (H/16)(W/16)*256 = H*W
    box_side = side(box[1]) if box else None         # one z per pixel of the box
    if not (img_side or box_side):
        return ""
    sets = []
    if img_side:
        sets.append(f"--set IMG_SHAPES=[{img_side},{img_side},3]")
    if box_side:
        sets.append(f"--set HEIGHT={box_side} --set WIDTH={box_side}")
    return ("The checkpoint looks like a square model of that size: convert with "
            + " ".join(sets) + " (or the same keys in --config).")


def _to_rgb(port: str, value: np.ndarray) -> np.ndarray:
    """Reverses the colour axis of first/last layers (BGR reference -> RGB port)."""
    layer, leaf = port.rsplit("/", 1)
    if layer in COLOUR_INPUT_LAYERS and leaf == "kernel":
        value = value.copy()
        value[:, :, 0:3, :] = value[:, :, 2::-1, :]
    elif layer in COLOUR_OUTPUT_LAYERS:
        value = value[..., ::-1].copy()
    return value


def model_variables(model) -> dict[str, dict[str, Any]]:
    """``{network: {reference name: variable}}`` for the four networks of a built PiiGAN."""
    out: dict[str, dict[str, Any]] = {}
    for key, attr, _ in NETWORKS:
        out[key] = {reference_name(v.path): v for v in getattr(model, attr).variables}
    return out


def load_reference_weights(model, tf1_checkpoint: str | os.PathLike, strict: bool = True,
                           bgr_to_rgb: bool = True) -> dict:
    """Assigns the network weights of a reference checkpoint to a built PiiGAN.

    Args:
        model: a built ``PiiGAN`` (any size; it must match the checkpoint's).
        tf1_checkpoint: checkpoint prefix, one of its files, or its folder.
        strict: raise on any missing, unexpected or mis-shaped variable;
            with False, assign what matches and report the rest.
        bgr_to_rgb: reverse the colour axes of the first and last layers so the
            model takes and returns RGB like the rest of the port (the reference
            was trained on OpenCV's BGR). False copies every value unchanged.

    Returns:
        A report: ``checkpoint`` (resolved prefix), ``step`` (reference
        ``global_step``, 0 if absent), ``loaded`` ``{network: {"variables",
        "parameters"}}``, ``skipped`` ``{category: [names]}``, and the lists
        ``missing``, ``unexpected``, ``mismatched`` (empty when strict).

    Raises:
        FileNotFoundError: no checkpoint at ``tf1_checkpoint``.
        CheckpointMismatchError: (strict) names every problem at once.
    """
    import tensorflow as tf

    prefix = resolve_checkpoint(tf1_checkpoint)
    reader = tf.train.load_checkpoint(prefix)
    shapes = {n: list(s) for n, s in reader.get_variable_to_shape_map().items()}

    skipped: dict[str, list[str]] = {}
    candidates = {}
    for name in sorted(shapes):
        category = skip_category(name)
        if category is None:
            candidates[name] = shapes[name]
        else:
            skipped.setdefault(category, []).append(name)
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes and not candidates:
        raise FileNotFoundError(
            f"{prefix} is an object-based (TF2) checkpoint, e.g. one written by piigan_tf "
            "itself, not a reference TF1 checkpoint: it needs no conversion (train.py and "
            "the inference tools read it directly)")

    wanted = model_variables(model)
    by_name = {n: (net, v) for net, vs in wanted.items() for n, v in vs.items()}
    missing = [n for n in by_name if n not in candidates]
    unexpected = [n for n in candidates if n not in by_name]
    mismatched = [(n, tuple(candidates[n]), tuple(v.shape)) for n, (_, v) in by_name.items()
                  if n in candidates and tuple(candidates[n]) != tuple(v.shape)]
    if strict and (missing or unexpected or mismatched):
        h, w = model.img_hw
        bh, bw = model.box_hw
        hint = _size_hint(shapes) if mismatched else ""
        if missing and not mismatched:
            hint = ("Is this a checkpoint of the reference PiiGAN (model.py of "
                    "vivitsai/PiiGAN)? Use strict=False (--partial) to load only what matches.")
        raise CheckpointMismatchError(prefix, missing, unexpected, mismatched,
                                      context=f"image {h}x{w}, hole box {bh}x{bw}", hint=hint)

    bad = {n for n, _, _ in mismatched}
    loaded = {net: {"variables": 0, "parameters": 0} for net in wanted}
    for name, (net, var) in by_name.items():
        if name not in candidates or name in bad:
            continue
        value = reader.get_tensor(name)
        if bgr_to_rgb:
            value = _to_rgb(port_name(name), value)
        var.assign(value.astype(var.dtype))
        loaded[net]["variables"] += 1
        loaded[net]["parameters"] += int(np.prod(var.shape))

    step = 0
    if "global_step" in shapes:
        step = int(reader.get_tensor("global_step"))
    for category, names in skipped.items():
        log.info("skipped %d %s: %s", len(names), category, ", ".join(names[:5])
                 + (", ..." if len(names) > 5 else ""))
    for kind, names in (("missing", missing), ("unexpected", unexpected),
                        ("mis-shaped", [n for n, _, _ in mismatched])):
        if names:
            log.warning("%d %s variables not loaded: %s", len(names), kind, ", ".join(names))
    return {"checkpoint": prefix, "step": step, "loaded": loaded, "skipped": skipped,
            "missing": sorted(missing), "unexpected": sorted(unexpected),
            "mismatched": sorted(mismatched), "bgr_to_rgb": bgr_to_rgb}


def convert_reference_checkpoint(tf1_checkpoint: str | os.PathLike,
                                 output_dir: str | os.PathLike,
                                 config: Config | None = None, strict: bool = True,
                                 bgr_to_rgb: bool = True, overwrite: bool = False) -> dict:
    """Converts a reference TF1 checkpoint into a piigan_tf training checkpoint.

    Builds the model at the config's size, assigns the reference's network
    weights (``load_reference_weights``), sets the step to the reference's
    ``global_step`` and writes ``output_dir/ckpt-<step>`` as the trainer does
    (model and both optimizers; ``train.py --checkpoint_dir output_dir`` resumes
    from it) plus ``output_dir/config.yml``. Optimizer slots are not converted:
    Adam's moments start from zero.

    Args:
        tf1_checkpoint: checkpoint prefix, one of its files, or its folder.
        output_dir: folder for the piigan_tf checkpoint.
        config: the port's config (default ``load_config()``: 128x128, box 64x64).
        strict: see ``load_reference_weights``.
        bgr_to_rgb: see ``load_reference_weights``.
        overwrite: allow writing into a folder that already holds checkpoints.

    Returns:
        The report of ``load_reference_weights`` plus ``output`` (the written
        checkpoint prefix) and ``config_path``.

    Raises:
        FileNotFoundError: no checkpoint at ``tf1_checkpoint``.
        FileExistsError: ``output_dir`` already has checkpoints and not ``overwrite``.
        CheckpointMismatchError: (strict) every missing/unexpected/mis-shaped variable.
    """
    config = config or load_config()
    output_dir = Path(output_dir)
    if (output_dir / "checkpoint").exists() and not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds checkpoints; choose another --output or pass "
            f"--overwrite (the converted one then becomes the latest)")
    resolve_checkpoint(tf1_checkpoint)  # fail on a bad path before loading TF and the model
    from piigan_tf.builders import build_piigan
    from piigan_tf.checkpoints import CheckpointStore

    model = build_piigan(config)
    report = load_reference_weights(model, tf1_checkpoint, strict=strict, bgr_to_rgb=bgr_to_rgb)
    step = report["step"]
    # The trainer counts steps with the optimizers' iterations (one generator
    # step and D_STEPS critic steps per reference iteration).
    model.g_optimizer.iterations.assign(step)
    model.d_optimizer.iterations.assign(step * config.D_STEPS)

    # The layout train.py writes and resumes from.
    store = CheckpointStore(output_dir, model=model, g_optimizer=model.g_optimizer,
                            d_optimizer=model.d_optimizer)
    report["output"] = store.save(step)
    report["config_path"] = str(config.dump(output_dir / "config.yml"))
    log.info("wrote %s (step %d)", report["output"], step)
    return report


# ----------------------------------------------------------------------- CLI
def format_report(report: dict, config: Config) -> str:
    """Human-readable summary of a conversion report."""
    lines = [f"converted {report['checkpoint']}", f"  -> {report['output']} (step "
             f"{report['step']}), config {report['config_path']}"]
    for net, n in report["loaded"].items():
        lines.append(f"  {net:<14} {n['variables']:>3} variables  {n['parameters']:>11,} "
                     "parameters")
    for category, names in report["skipped"].items():
        lines.append(f"  skipped {len(names)} {category}")
    for kind in ("missing", "unexpected", "mismatched"):
        if report[kind]:
            lines.append(f"  NOT loaded ({kind}): {len(report[kind])}")
    order = ("BGR reference -> RGB port" if report["bgr_to_rgb"]
             else "kept as in the checkpoint (BGR: feed BGR images)")
    lines.append(f"  colour order: {order}")
    if config.EXTRACTOR_ACTIVATION != "leaky_relu":
        lines.append(
            "note: the reference never trains its extractor (its weights above are the "
            "initial values) and runs it with leaky ReLU; this config uses "
            f"EXTRACTOR_ACTIVATION={config.EXTRACTOR_ACTIVATION}. Add --set "
            "EXTRACTOR_ACTIVATION=leaky_relu to match the reference code.")
    return "\n".join(lines)
