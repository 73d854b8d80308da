"""The web demo: `python demo.py --help`.

The program is piigan_tf.cli.demo, installed as the command `piigan-demo`;
this script calls it so that it runs from a checkout without installing.
"""

import sys

from piigan_tf.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
