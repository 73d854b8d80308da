"""What the command-line programs share: the parser's frame, the model-source
options, and loading TensorFlow quietly."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

#: What TensorFlow's C++ side prints while it loads on a machine without a GPU
#: (absl logs written before its logging is initialised, so TF_CPP_MIN_LOG_LEVEL
#: does not hide them): notices a newcomer reads as failures. Only these are
#: dropped; any other line printed while TensorFlow loads is shown.
TF_LOAD_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc|cuda_platform\.cc|cuda_executor\.cc|failed call to cuInit"
    r"|oneDNN custom operations are on|cpu_feature_guard\.cc"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation_placer\.cc"
    r"|TF-TRT Warning|This TensorFlow binary is optimized to use available CPU"
    r"|rebuild TensorFlow with the appropriate compiler flags")


def new_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the docstring's first line and epilog the
    rest, with ``--verbose`` (see :func:`load_tensorflow`)."""
    first, _, rest = doc.strip("\n").partition("\n")
    parser = argparse.ArgumentParser(description=first.strip(), epilog=rest.strip("\n") or None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log (its C++ notices while it loads, "
                             "info lines); by default only this program's messages and "
                             "real errors are shown")
    return parser


def add_model_source(parser: argparse.ArgumentParser, checkpoint_help: str,
                     saved_model_help: str):
    """``--checkpoint_dir`` or ``--saved_model`` (not both). Returns the group."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--checkpoint_dir", default=None, help=checkpoint_help)
    group.add_argument("--saved_model", default=None, help=saved_model_help)
    return group


def add_blend(parser: argparse.ArgumentParser, what: str = "completions",
              saved_model: bool = True) -> None:
    """``--blend {paste,poisson}`` (default None: the model's own)."""
    from piigan_tf.config import BLENDS

    parser.add_argument("--blend", choices=BLENDS, default=None,
                        help=f"how the {what} join the known pixels: paste (the reference's "
                             "rule) or poisson (gradient-domain: the fill keeps its texture "
                             "and meets the known pixels at the hole's border, no seam; "
                             "docs/blending.md); default: the model's own, its config's "
                             "BLEND (paste unless the model folder says otherwise)"
                             + ("; with --saved_model the one it was exported with"
                                if saved_model else ""))


def load_inpainter(args):
    """The ``Inpainter`` of ``--checkpoint_dir`` or ``--saved_model`` with ``--blend``.

    Raises:
        CheckpointNotFoundError, FileNotFoundError, RuntimeError: nothing to load.
        ValueError: ``--blend`` differs from the SavedModel's (part of its graph).
    """
    from piigan_tf.inference import Inpainter

    if getattr(args, "saved_model", None):
        return Inpainter.from_saved_model(args.saved_model, blend=args.blend)
    return Inpainter.from_checkpoint(args.checkpoint_dir, blend=args.blend)


def load_tensorflow(verbose: bool = False) -> None:
    """Imports TensorFlow, without its C++ start-up notices unless ``verbose``.

    Every program calls this first thing in ``main``, before anything that
    imports TensorFlow. Quiet (the default): ``TF_CPP_MIN_LOG_LEVEL`` is 2
    unless the user set it (warnings and errors of the run still show), and
    the stderr written while TensorFlow loads and looks for devices is
    captured, the lines of :data:`TF_LOAD_NOISE` dropped and the rest
    written back. ``verbose``: level 0 (unless set) and nothing captured.
    Does nothing when TensorFlow is already imported (a program run in-process).
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    if verbose:
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # where the CUDA probe logs its error
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not TF_LOAD_NOISE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
