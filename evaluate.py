"""Evaluate a model against classical inpainting: `python evaluate.py --help`.

The program is piigan_tf.cli.evaluate, installed as the command `piigan-evaluate`;
this script calls it so that it runs from a checkout without installing.
"""

import sys

from piigan_tf.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
