"""Make a shipped model folder (generator weights + config) from a training checkpoint.

The folder (e.g. pretrained/celeba64) holds generator.npz, config.yml,
check.json and PROVENANCE.md, and loads wherever a checkpoint folder does
(test.py, evaluate.py, export.py, demo.py, train.py --init_from).

Examples:
    python -m piigan_tf.cli.pretrained --checkpoint_dir checkpoints/celeba64 --out pretrained/celeba64
    python -m piigan_tf.cli.pretrained --update_check pretrained/celeba64
"""

from __future__ import annotations

import argparse
import os
import sys

from piigan_tf.cli.common import load_tensorflow, new_parser

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("--checkpoint_dir", default=None, help="training checkpoint folder")
    p.add_argument("--out", default=None, help="model folder to write, e.g. pretrained/celeba64")
    p.add_argument("--update_check", default=None, metavar="MODEL_DIR",
                   help="only rewrite MODEL_DIR/check.json from the folder's own weights (after "
                        "a deliberate change of what sampling computes)")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="storage type of the weights (default float16: half the size)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    load_tensorflow(args.verbose)
    if args.update_check is None and (args.checkpoint_dir is None or args.out is None):
        parser.error("pass --checkpoint_dir and --out (or --update_check MODEL_DIR)")
    from piigan_tf.loading import CheckpointNotFoundError
    from piigan_tf.pretrained import make_model_folder, write_check

    try:
        if args.update_check is not None:
            print(f"wrote {write_check(args.update_check)}")
            return 0
        make_model_folder(args.checkpoint_dir, args.out, args.dtype)
    except (CheckpointNotFoundError, RuntimeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
