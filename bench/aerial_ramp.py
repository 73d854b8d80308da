"""The colour ramp the aerial examples are tinted with (``data.sample.AERIAL_RAMP``).

Prints the mean colour of the pixels at each brightness quantile of a set
of images (``data.sample.colour_ramp``), as the Python literal the package
holds, and whether it matches. No image leaves this script: only seven
colours.

Run::

    python bench/aerial_ramp.py --data data/mauflex/train.flist
"""

from __future__ import annotations

import argparse
import sys

import _common


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="file list or folder of images")
    args = p.parse_args(argv)
    _common.configure_env()
    from piigan_tf.cli.common import load_tensorflow

    load_tensorflow(verbose=False)
    from piigan_tf.data import load_image_file
    from piigan_tf.data.sample import AERIAL_RAMP, colour_ramp
    from piigan_tf.evaluation import list_eval_files

    images = []
    for path in list_eval_files(args.data):
        try:
            images.append(load_image_file(path))
        except (ValueError, OSError) as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
    if not images:
        print("error: no image could be read", file=sys.stderr)
        return 2
    ramp = colour_ramp(images)
    print(f"{len(images)} images")
    print("AERIAL_RAMP = " + repr(ramp))
    print("matches data.sample.AERIAL_RAMP" if ramp == AERIAL_RAMP
          else "differs from data.sample.AERIAL_RAMP: " + repr(AERIAL_RAMP))
    return 0


if __name__ == "__main__":
    sys.exit(main())
