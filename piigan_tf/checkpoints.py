"""A training run's checkpoint folder: save, restore with fallback, debris cleanup, start fresh.

``CheckpointStore`` wraps ``tf.train.Checkpoint`` + ``tf.train.CheckpointManager``
and is the one place that knows how TensorFlow names what it writes:

* ``ckpt-N.index`` and ``ckpt-N.data-K-of-M``: checkpoint N;
* ``ckpt-N_temp/`` and ``*.tempstate*`` files: a save in progress (TensorFlow
  writes there, then renames into place);
* ``checkpoint``: the index file naming the complete checkpoints, rewritten
  atomically after each save.

Anything else in the folder (``config.yml``, a user's own files) is never
touched: starting fresh removes only the files above.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable

import tensorflow as tf

log = logging.getLogger("piigan_tf")

#: What a CheckpointManager writes per checkpoint N (see the module docstring).
CKPT_FILE = re.compile(r"ckpt-(\d+)(_temp|\.index.*|\.data-\d+-of-\d+.*)")
#: The index file naming the complete checkpoints.
INDEX_FILE = "checkpoint"


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, unwritable folder, ...).

    The previous checkpoint is left as it was; the message names the folder,
    the OS error and the checkpoint a rerun resumes from.
    """


class CheckpointReadError(RuntimeError):
    """No checkpoint in a folder could be restored (all are unreadable)."""


def error_text(error: BaseException) -> str:
    """A one-line description of an OS or TensorFlow error, with its errno name."""
    if isinstance(error, tf.errors.OpError):
        text = re.sub(r"\s*\[\[\{\{.*?\]\]", "", error.message)  # graph node annotations
        text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
        text = re.sub(r"\s*\[Op:\w+\]( name: \S*)?", "", text)
    elif isinstance(error, OSError) and error.errno is not None:
        import errno as errno_module

        name = errno_module.errorcode.get(error.errno, str(error.errno))
        where = f": {error.filename}" if error.filename else ""
        text = f"[{name}] {error.strerror}{where}"
    else:
        text = str(error)
    return " ".join(text.split())[:500]


def checkpoint_number(path: str | os.PathLike) -> int:
    """N of a checkpoint prefix ``.../ckpt-N``."""
    return int(Path(path).name.rsplit("-", 1)[1])


def checkpoint_step(source: str | os.PathLike) -> int | None:
    """The training step of a checkpoint (None if unknown).

    Read from the checkpoint's generator-optimizer iteration count (one per
    training iteration), which stays right when a checkpoint is re-saved under
    another number; else the number of a ``.../ckpt-N`` path.
    """
    try:
        reader = tf.train.load_checkpoint(str(source))
        return int(reader.get_tensor("g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))
    except Exception:  # noqa: BLE001 - not a checkpoint, or one without optimizer state
        match = re.search(r"ckpt-(\d+)$", str(source))
        return int(match.group(1)) if match else None


def checkpoint_to_load(source: str | os.PathLike) -> tuple[str | None, Path]:
    """``(checkpoint, folder)`` of a checkpoint folder or of one checkpoint.

    ``source`` is a run's folder (its newest complete checkpoint is taken;
    None if it has none) or one checkpoint's prefix (``.../ckpt-40``).
    """
    source = Path(source)
    if Path(f"{source}.index").is_file():  # a checkpoint prefix: .../ckpt-40
        return str(source), source.parent
    return (tf.train.latest_checkpoint(str(source)) if source.is_dir() else None), source


def latest_checkpoint_dir(root: str | os.PathLike = "checkpoints") -> Path | None:
    """The most recently written checkpoint folder under ``root``.

    Looks in ``root`` and all its subfolders for index files (``checkpoint``)
    that point at an existing checkpoint, and returns the folder whose index
    was modified last; None if there is none.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    found = []
    for index in root.rglob(INDEX_FILE):
        if index.is_file() and tf.train.latest_checkpoint(str(index.parent)):
            found.append((index.stat().st_mtime, str(index.parent)))
    if not found:
        return None
    return Path(max(found)[1])


class CheckpointStore:
    """The checkpoints of one run in one folder.

    Args:
        directory: the run's checkpoint folder (created on the first save).
        max_to_keep: how many checkpoints stay (older ones are deleted).
        **objects: what a checkpoint holds, as for ``tf.train.Checkpoint``
            (e.g. ``model=..., g_optimizer=..., d_optimizer=...``).
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3, **objects):
        self.directory = Path(directory)
        self.max_to_keep = max_to_keep
        self.checkpoint = tf.train.Checkpoint(**objects)
        self._manager = None

    @property
    def manager(self) -> tf.train.CheckpointManager:
        # Made on first use: the manager reads the index file when created.
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory),
                                                       max_to_keep=self.max_to_keep)
        return self._manager

    @property
    def latest(self) -> str | None:
        """The newest complete checkpoint the index file names, or None."""
        return self.manager.latest_checkpoint

    def files(self) -> list[tuple[int, str, Path]]:
        """``(N, kind, path)`` of the checkpoint entries in the folder (kind: the suffix)."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            m = CKPT_FILE.fullmatch(entry.name)
            if m:
                found.append((int(m.group(1)), m.group(2), entry))
        return found

    def remove_debris(self) -> list[Path]:
        """Deletes what an interrupted or failed save left behind. Returns what it removed.

        Temp folders and ``.tempstate`` files, and checkpoint files newer than
        the last one the index file names, are debris of a kill or a write
        error: never restored, they only take disk space. Without an index
        file nothing is known to be debris but the temp entries.
        """
        recorded = {Path(p).name for p in self.manager.checkpoints}
        newest = checkpoint_number(self.latest) if self.latest else None
        removed = []
        for number, kind, path in self.files():
            stale = kind == "_temp" or ".tempstate" in kind or (
                newest is not None and number > newest and f"ckpt-{number}" not in recorded)
            if stale:
                log.info("removing %s, left by an interrupted checkpoint save", path)
                _remove(path)
                removed.append(path)
        return removed

    def candidates(self) -> list[str]:
        """Checkpoints to try, newest first: those the index file names.

        If that file is missing but complete ``ckpt-N.index`` files are there
        (e.g. copied without it), those are used instead of starting over.
        """
        if self.manager.checkpoints:
            return list(reversed(self.manager.checkpoints))
        numbers = sorted({n for n, kind, _ in self.files() if kind == ".index"}, reverse=True)
        if numbers:
            log.warning("%s has checkpoint files but no '%s' index file; trying them newest "
                        "first", self.directory, INDEX_FILE)
        return [str(self.directory / f"ckpt-{n}") for n in numbers]

    def restore(self, check: Callable[[], None] | None = None) -> str | None:
        """Restores the newest checkpoint that reads back whole. Returns its path.

        Args:
            check: called after each restore; raising rejects that checkpoint
                (e.g. NaN weights), and the next older one is tried.

        Returns:
            The restored checkpoint, or None when the folder has none.

        Raises:
            CheckpointReadError: checkpoints exist but none can be restored.
        """
        candidates = self.candidates()
        problems = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
                if check is not None:
                    check()
            except Exception as e:  # noqa: BLE001 - any failure makes this one unusable
                problems.append(f"{path}: {error_text(e)}")
                log.warning("cannot restore %s (%s); trying the previous checkpoint",
                            path, error_text(e))
                continue
            return path
        if not candidates:
            return None
        raise CheckpointReadError(
            f"none of the {len(candidates)} checkpoints in {self.directory} can be "
            f"restored ({'; '.join(problems)}). Move the folder away to keep it, or pass "
            "--fresh to start over (this deletes them).")

    def save(self, number: int, passthrough: tuple = (),
             prepare: Callable[[], None] | None = None) -> str:
        """Writes checkpoint ``number``. Atomic: a kill leaves the previous one current.

        Args:
            number: the checkpoint's N (the training step).
            passthrough: exception types re-raised as they are (a lost peer
                of a multi-worker run), not reported as a write error.
            prepare: called first (e.g. writing the run's ``config.yml``);
                its OSError is reported like the save's own.

        Raises:
            CheckpointWriteError: the write failed (disk full, unwritable
                folder); what it left is removed, the previous checkpoint is intact.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if prepare is not None:
                prepare()
            return self.manager.save(checkpoint_number=number)
        except (OSError, tf.errors.OpError) as e:
            if passthrough and isinstance(e, passthrough):
                raise
            try:
                self.remove_debris()  # frees the space a partial write took
            except OSError:
                pass
            raise CheckpointWriteError(
                f"could not write the checkpoint for step {number} to {self.directory}: "
                f"{error_text(e)}. The previous checkpoint ({self.latest or 'none'}) is "
                "intact; free disk space or fix the folder (or pass --checkpoint_dir), then "
                "run the same command to resume from it.") from e

    def clear(self) -> list[Path]:
        """Starts fresh: deletes this run's checkpoints and index file, nothing else.

        Returns:
            The entries removed. Other files in the folder stay.
        """
        removed = []
        for _, _, path in self.files():
            _remove(path)
            removed.append(path)
        index = self.directory / INDEX_FILE
        if index.is_file():
            index.unlink()
            removed.append(index)
        self._manager = None  # it cached the index file's list
        if removed:
            log.info("starting fresh: removed %d checkpoint files from %s", len(removed),
                     self.directory)
        return removed


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
