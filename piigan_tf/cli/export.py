"""Export a trained PiiGAN generator as a SavedModel for TF Serving.

Examples:
    python export.py                                   # latest checkpoint -> export/piigan/<next>/
    python export.py --checkpoint_dir checkpoints/celeba --export_dir /models/piigan

The version folder holds everything the C++ server needs (uint8 arrays in and out,
or PNG/JPEG files in and PNG files out with the sample_bytes signature;
pre/post-processing in the graph, core ops only). Serve it with
    tensorflow_model_server --rest_api_port=8501 --model_name=piigan \\
        --model_base_path=$PWD/export/piigan
See README.md (Export and TF Serving) for the request and response formats.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from piigan_tf.cli.common import add_blend, load_tensorflow, new_parser



def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("--checkpoint_dir", default=None,
                   help="training checkpoint folder (default: the most recent under checkpoints/)")
    p.add_argument("--export_dir", default="export/piigan",
                   help="model base folder; the model goes to <export_dir>/<version>/ "
                        "(default export/piigan)")
    p.add_argument("--version", type=int, default=None,
                   help="version number (default: one more than the highest present)")
    p.add_argument("--max_samples", type=int, default=None,
                   help="largest num_samples a request may ask for (default 64)")
    p.add_argument("--window", type=int, default=None,
                   help="least side of the window the graph completes each group of holes in "
                        "(default: the model's, 256 for the 64x64 face model)")
    p.add_argument("--max_memory", type=float, default=None, metavar="GB",
                   help="estimated peak memory a request may reach, in GB; a larger request "
                        "is answered INVALID_ARGUMENT saying what to lower (default 8; 0: no "
                        "limit)")
    add_blend(p, "served completions", saved_model=False)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    load_tensorflow(args.verbose)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from piigan_tf.export import MAX_REQUEST_MEMORY, export_saved_model
    from piigan_tf.inference import MAX_SAMPLES
    from piigan_tf.loading import CheckpointNotFoundError

    max_samples = MAX_SAMPLES if args.max_samples is None else args.max_samples
    if max_samples < 1:
        print(f"error: --max_samples must be at least 1, got {max_samples}", file=sys.stderr)
        return 2
    if args.version is not None and args.version < 1:
        print(f"error: --version must be a positive integer, got {args.version}", file=sys.stderr)
        return 2
    if args.window is not None and args.window < 8:
        print(f"error: --window must be at least 8 pixels, got {args.window}", file=sys.stderr)
        return 2
    max_memory = MAX_REQUEST_MEMORY if args.max_memory is None else args.max_memory * 1e9
    try:
        path = export_saved_model(args.export_dir, args.checkpoint_dir, version=args.version,
                                  max_samples=max_samples, window=args.window,
                                  max_memory=max_memory or None, blend=args.blend)
    except (CheckpointNotFoundError, FileExistsError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    base = os.path.abspath(args.export_dir)
    print(f"exported {path}\nserve it with:\n  tensorflow_model_server --rest_api_port=8501 "
          f"--model_name=piigan --model_base_path={base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
