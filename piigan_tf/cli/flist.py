"""Make train/val file lists for an image folder.

Lists the images of --folder recursively, shuffles them with a fixed seed and
holds out --num_val for validation (10% if the folder has at most 2 x num_val
images); writes OUT/NAME/train.flist and OUT/NAME/val.flist with absolute paths.

Examples:
    python -m piigan_tf.cli.flist --folder /path/to/img_align_celeba --name celeba
    python -m piigan_tf.cli.flist --folder celeba/train --val_folder celeba/val --name celeba

Tiles cut from a few large frames are better split by frame, so that
validation is a place the model never saw (--val_match takes a part of the
file name):
    python -m piigan_tf.cli.flist --folder ../shared/data/mauflex --name mauflex --val_match _f11_

No TensorFlow is loaded, so the command starts at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from piigan_tf.cli.common import new_parser
from piigan_tf.data.flist import (DEFAULT_NUM_VAL, make_flists, make_match_flists,
                                  write_split_flists)


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("--folder", required=True, help="folder with the images (searched recursively)")
    p.add_argument("--name", required=True,
                   help="dataset name, e.g. celeba, mauflex; the lists go to OUT/NAME/")
    p.add_argument("--out", default="data", help="data directory (default: data)")
    p.add_argument("--num_val", type=int, default=DEFAULT_NUM_VAL,
                   help=f"validation size (default: {DEFAULT_NUM_VAL})")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0, as upstream)")
    p.add_argument("--val_folder", default=None,
                   help="a separate folder of validation images: all of --folder is then used "
                        "for training and nothing is held out (e.g. identity-disjoint splits)")
    p.add_argument("--val_match", action="append", default=None, metavar="SUBSTRING",
                   help="hold out the files whose name contains SUBSTRING (repeatable) instead "
                        "of a random --num_val: a split by group, e.g. --val_match _f11_ keeps "
                        "MauFlex frame 11 for validation so validation is a place the model "
                        "never saw")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.val_match is not None and args.val_folder is not None:
        parser.error("--val_match and --val_folder are two ways to choose validation; give one")
    for option, folder in (("--folder", args.folder), ("--val_folder", args.val_folder)):
        if folder is not None and not os.path.isdir(folder):
            parser.error(f"{option} {folder!r} is not a directory")
    if args.num_val < 0:
        parser.error("--num_val must be >= 0")
    out_dir = os.path.join(args.out, args.name)
    try:
        if args.val_match is not None:
            num_train, num_val = make_match_flists(args.folder, out_dir, args.val_match, args.seed)
        elif args.val_folder is None:
            num_train, num_val = make_flists(args.folder, out_dir, args.num_val, args.seed)
        else:
            num_train, num_val = write_split_flists(args.folder, args.val_folder, out_dir,
                                                    args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"train: {num_train} images -> {os.path.join(out_dir, 'train.flist')}")
    print(f"val:   {num_val} images -> {os.path.join(out_dir, 'val.flist')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
