"""File lists: one image path per line, a train and a validation list per dataset.

This replaces the reference's ``divide.py``/``flist.py``: list a folder, shuffle
with ``random.seed(0)``, hold out 1,000 files for validation and write
``train.flist`` and ``val.flist``. Differences from the reference: the listing
is recursive, filtered by image extension and *sorted* before the shuffle
(``os.listdir`` order is filesystem-dependent, so the reference split was not
reproducible across machines), and small folders (≤ 2 × ``num_val`` images)
hold out 10 % instead of leaving almost nothing to train on.

Command line (``piigan_tf.cli.flist``)::

    python -m piigan_tf.cli.flist --folder /path/to/mauflex --name mauflex

writes ``data/mauflex/train.flist`` and ``data/mauflex/val.flist``. Tiles cut
from a few large frames should be split by frame, so that validation is a
place the model never saw (``--val_match`` takes a part of the file name)::

    python -m piigan_tf.cli.flist --folder ../shared/data/mauflex --name mauflex --val_match _f11_

This module does not import TensorFlow, so the command starts instantly.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Iterable, Sequence

logger = logging.getLogger("piigan_tf")

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
DEFAULT_NUM_VAL = 1000  # the reference's _NUM_TEST


def read_flist(path: str | os.PathLike) -> list[str]:
    """Reads a file list.

    Blank lines are skipped. A relative entry that does not exist relative to
    the working directory is resolved against the folder holding the list, so
    lists with paths relative to themselves are portable.

    Args:
        path: The ``.flist`` file.

    Returns:
        The listed paths, in file order.

    Raises:
        FileNotFoundError: If the list itself does not exist.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file list not found: {path}")
    base = os.path.dirname(os.path.abspath(path))
    files = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            entry = line.strip()
            if not entry:
                continue
            if not os.path.isabs(entry) and not os.path.exists(entry):
                entry = os.path.join(base, entry)
            files.append(entry)
    return files


def write_flist(path: str | os.PathLike, files: Iterable[str]) -> None:
    """Writes one path per line (creating the folder), newline-terminated."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{name}\n" for name in files)


def list_images(folder: str | os.PathLike, exts: Sequence[str] = IMAGE_EXTS) -> list[str]:
    """Recursively lists image files (case-insensitive extensions), sorted, absolute.

    Args:
        folder: Root folder.
        exts: Accepted extensions including the dot.

    Returns:
        Sorted absolute paths.

    Raises:
        FileNotFoundError: If ``folder`` is not a directory.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder not found: {folder}")
    exts = tuple(e.lower() for e in exts)
    found = []
    for root, dirs, names in os.walk(os.path.abspath(folder)):
        dirs.sort()
        found.extend(os.path.join(root, n) for n in names if n.lower().endswith(exts))
    return sorted(found)


def num_held_out(num_files: int, num_val: int = DEFAULT_NUM_VAL) -> int:
    """How many files :func:`split_files` holds out for validation.

    ``num_val`` normally; 10 % (at least 1 when there are 2+ files) when the
    list has no more than ``2 * num_val`` files.
    """
    if num_files > 2 * num_val:
        return num_val
    if num_files < 2 or num_val == 0:
        return 0
    return max(1, num_files // 10)


def split_files(
    files: Sequence[str], num_val: int = DEFAULT_NUM_VAL, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Shuffles with ``random.Random(seed)`` and holds out the first files for validation.

    Args:
        files: Paths (sort them first for a reproducible split).
        num_val: Validation size; see :func:`num_held_out` for small lists.
        seed: Shuffle seed (the reference uses 0).

    Returns:
        ``(train, val)`` lists, in shuffled order.
    """
    shuffled = list(files)
    random.Random(seed).shuffle(shuffled)
    held_out = num_held_out(len(shuffled), num_val)
    if held_out != num_val and shuffled:
        logger.info(
            "only %d images (<= 2 x num_val=%d): holding out %d (10%%) for validation",
            len(shuffled),
            num_val,
            held_out,
        )
    return shuffled[held_out:], shuffled[:held_out]


def make_flists(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    num_val: int = DEFAULT_NUM_VAL,
    seed: int = 0,
    exts: Sequence[str] = IMAGE_EXTS,
) -> tuple[int, int]:
    """Writes ``out_dir/train.flist`` and ``out_dir/val.flist`` for an image folder.

    Args:
        folder: Folder searched recursively for images.
        out_dir: Where the two lists go (created).
        num_val: Validation size (10 % for folders with ≤ 2 × ``num_val`` images).
        seed: Shuffle seed.
        exts: Image extensions to include.

    Returns:
        ``(num_train, num_val)`` actually written.

    Raises:
        FileNotFoundError: If ``folder`` does not exist.
        ValueError: If it holds no image with one of ``exts``.
    """
    files = list_images(folder, exts)
    if not files:
        raise ValueError(f"no images ({', '.join(exts)}) found under {os.fspath(folder)}")
    train, val = split_files(files, num_val, seed)
    write_flist(os.path.join(out_dir, "train.flist"), train)
    write_flist(os.path.join(out_dir, "val.flist"), val)
    logger.info("wrote %d train and %d val paths to %s", len(train), len(val), os.fspath(out_dir))
    return len(train), len(val)


def write_split_flists(
    train_folder: str | os.PathLike,
    val_folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    seed: int = 0,
    exts: Sequence[str] = IMAGE_EXTS,
) -> tuple[int, int]:
    """Writes the lists of a dataset that comes already split into two folders.

    Each folder is listed (sorted) and shuffled with ``random.Random(seed)``
    as :func:`split_files` does; nothing is held out.

    Returns:
        ``(num_train, num_val)`` written.

    Raises:
        FileNotFoundError: If a folder does not exist.
        ValueError: If a folder holds no image with one of ``exts``.
    """
    lists = []
    for folder in (train_folder, val_folder):
        files = list_images(folder, exts)
        if not files:
            raise ValueError(f"no images ({', '.join(exts)}) found under {os.fspath(folder)}")
        random.Random(seed).shuffle(files)
        lists.append(files)
    for name, files in zip(("train.flist", "val.flist"), lists):
        write_flist(os.path.join(out_dir, name), files)
    logger.info("wrote %d train and %d val paths to %s", len(lists[0]), len(lists[1]), os.fspath(out_dir))
    return len(lists[0]), len(lists[1])


def split_by_match(files: Sequence[str], val_match: Sequence[str]) -> tuple[list[str], list[str]]:
    """Splits by a group named in the file names: those matching go to validation.

    For datasets whose images come in groups that must not be split across
    train and validation (the tiles of one aerial frame, the photos of one
    identity): a file is held out when its base name contains any of
    ``val_match``. Order is kept (sort the input for a reproducible list).

    Args:
        files: Paths.
        val_match: Substrings of base names, e.g. ``["_f11_"]`` for MauFlex frame 11.

    Returns:
        ``(train, val)``.

    Raises:
        ValueError: no file, or every file, matches (the message names the substrings).
    """
    patterns = [m for m in val_match if m]
    if not patterns:
        raise ValueError("val_match needs at least one non-empty substring")
    val = [f for f in files if any(m in os.path.basename(f) for m in patterns)]
    train = [f for f in files if not any(m in os.path.basename(f) for m in patterns)]
    if not val:
        raise ValueError(f"no file name contains {' or '.join(map(repr, patterns))}: "
                         "nothing to hold out for validation")
    if not train:
        raise ValueError(f"every file name contains {' or '.join(map(repr, patterns))}: "
                         "nothing left to train on")
    return train, val


def make_match_flists(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    val_match: Sequence[str],
    seed: int = 0,
    exts: Sequence[str] = IMAGE_EXTS,
) -> tuple[int, int]:
    """Writes the lists of a folder split by :func:`split_by_match`.

    Each list is shuffled with ``random.Random(seed)`` as :func:`split_files` does.

    Returns:
        ``(num_train, num_val)`` written.

    Raises:
        FileNotFoundError: If ``folder`` does not exist.
        ValueError: no images, or the match leaves one side empty.
    """
    files = list_images(folder, exts)
    if not files:
        raise ValueError(f"no images ({', '.join(exts)}) found under {os.fspath(folder)}")
    train, val = split_by_match(files, val_match)
    random.Random(seed).shuffle(train)
    random.Random(seed).shuffle(val)
    write_flist(os.path.join(out_dir, "train.flist"), train)
    write_flist(os.path.join(out_dir, "val.flist"), val)
    logger.info("wrote %d train and %d val paths to %s", len(train), len(val), os.fspath(out_dir))
    return len(train), len(val)
