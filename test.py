"""Sample completions of masked images: `python test.py --help`.

The program is piigan_tf.cli.sample, installed as the command `piigan-sample`;
this script calls it so that it runs from a checkout without installing.
"""

import sys

from piigan_tf.cli.sample import main

if __name__ == "__main__":
    sys.exit(main())
