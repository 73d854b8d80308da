"""Train PiiGAN: `python train.py --help`.

The program is piigan_tf.cli.train, installed as the command `piigan-train`;
this script calls it so that it runs from a checkout without installing.
"""

import sys

from piigan_tf.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
