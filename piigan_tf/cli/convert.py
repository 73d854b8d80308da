"""Convert a reference PiiGAN (TF1 + neuralgym) checkpoint into one train.py resumes from.

Every network variable maps one to one by name; by default the colour axes of
the first and last layers are reversed (the reference reads BGR, the port RGB).

Example:
    python -m piigan_tf.cli.convert --tf1_checkpoint model_logs/face_model --output checkpoints/celeba
    python train.py --dataset celeba          # resumes from the converted step
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from piigan_tf.cli.common import load_tensorflow, new_parser

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("--tf1_checkpoint", required=True,
                   help="reference checkpoint: its prefix (snap-100000), one of its files, "
                        "or its folder")
    p.add_argument("--output", required=True,
                   help="folder for the piigan_tf checkpoint, e.g. checkpoints/celeba")
    p.add_argument("--config", default=None,
                   help="YAML config giving the model size (default: setting.yml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, repeatable (e.g. --set IMG_SHAPES=[256,256,3])")
    p.add_argument("--partial", action="store_true",
                   help="load what matches and report the rest instead of failing")
    p.add_argument("--keep_bgr", action="store_true",
                   help="copy the colour axes unchanged (the model then expects BGR images)")
    p.add_argument("--overwrite", action="store_true",
                   help="write even if --output already holds checkpoints")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    load_tensorflow(args.verbose)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from piigan_tf.config import ConfigError, load_config, parse_overrides
    from piigan_tf.convert import (CheckpointMismatchError, convert_reference_checkpoint,
                                   format_report)

    try:
        config = load_config(args.config, parse_overrides(args.set))
        report = convert_reference_checkpoint(args.tf1_checkpoint, args.output, config,
                                              strict=not args.partial,
                                              bgr_to_rgb=not args.keep_bgr,
                                              overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ConfigError, CheckpointMismatchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(report, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
