"""What the command-line programs share: the parser's frame and the model-source options."""

from __future__ import annotations

import argparse


def new_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the docstring's first line and epilog the rest."""
    first, _, rest = doc.strip("\n").partition("\n")
    return argparse.ArgumentParser(description=first.strip(), epilog=rest.strip("\n") or None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_model_source(parser: argparse.ArgumentParser, checkpoint_help: str,
                     saved_model_help: str):
    """``--checkpoint_dir`` or ``--saved_model`` (not both). Returns the group."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--checkpoint_dir", default=None, help=checkpoint_help)
    group.add_argument("--saved_model", default=None, help=saved_model_help)
    return group
