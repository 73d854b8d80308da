"""Export a SavedModel for TF Serving: `python export.py --help`.

The program is piigan_tf.cli.export, installed as the command `piigan-export`;
this script calls it so that it runs from a checkout without installing.
"""

import sys

from piigan_tf.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
