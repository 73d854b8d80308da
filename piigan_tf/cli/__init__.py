"""The command-line programs, importable so that an install can make commands of them.

Each module holds one program's parser and ``main(argv=None) -> int`` (the
exit code). The scripts at the repository root (``train.py``, ``test.py``,
``evaluate.py``, ``export.py``, ``demo.py``) and the commands ``pip install``
creates (``piigan-train``, ``piigan-sample``, ``piigan-evaluate``,
``piigan-export``, ``piigan-demo``) call these same functions.

Importing a module sets the environment its program needs before TensorFlow
is first imported (oneDNN) and imports nothing heavy: TensorFlow loads when
``main`` runs, first thing, through ``common.load_tensorflow`` (quiet unless
``--verbose``). So this package's ``__init__`` imports nothing.
"""
