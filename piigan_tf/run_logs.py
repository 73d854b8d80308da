"""A run's per-step log files (``losses.jsonl``, ``eval.csv``), safe under kills and resume.

Both are one record per logged step, appended and flushed as training goes.
:class:`StepLog` is the rule they share: a run resumed at step ``start``
keeps only the complete records with ``step <= start`` (a kill can leave
later ones, or half a line), rewritten atomically; a write error (disk full)
is logged once and logging stops, and the checkpoint save that follows
reports the problem. The two differ only in their format:

* ``.jsonl``: one JSON object per line (``{"step": 300, "g_loss": ...}``);
* ``.csv``: a header naming the columns (``step`` first), then one row per
  record; the columns are those of the first record. A record with new
  columns (a run resumed by a newer version that measures more) widens the
  file: it is rewritten with the new columns added, ``nan`` in the earlier rows.

Values are written with ``repr`` precision, so they read back exactly.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from pathlib import Path
from typing import IO, Sequence

import numpy as np


log = logging.getLogger("piigan_tf")

__all__ = ["StepLog", "read_eval_log", "read_loss_log", "write_eval_log"]


class _JsonLines:
    """One JSON object per line."""

    def read(self, path: Path) -> list:
        return read_loss_log(path)

    def dump(self, handle: IO[str], records: Sequence[dict]) -> None:
        for record in records:
            self.append(handle, record)

    def append(self, handle: IO[str], record: dict) -> None:
        handle.write(json.dumps(record) + "\n")

    def widens(self, record: dict) -> bool:
        return False  # every line names its own keys


class _Csv:
    """A header, then one row per record; the columns are fixed by the first record."""

    def __init__(self):
        self.columns: list[str] | None = None

    def read(self, path: Path) -> list[dict]:
        return read_eval_log(path)

    def dump(self, handle: IO[str], records: Sequence[dict]) -> None:
        for record in records:
            self.append(handle, record)

    def append(self, handle: IO[str], record: dict) -> None:
        if self.columns is None:
            self.columns = list(record)
        writer = csv.DictWriter(handle, self.columns, restval="nan", extrasaction="ignore")
        if handle.tell() == 0:
            writer.writeheader()
        writer.writerow({k: _cell(v) for k, v in record.items()})

    def widens(self, record: dict) -> bool:
        """Whether ``record`` has columns the file does not (then it is rewritten wider)."""
        if self.columns is None or all(k in self.columns for k in record):
            return False
        self.columns += [k for k in record if k not in self.columns]
        return True


_FORMATS = {".jsonl": _JsonLines, ".csv": _Csv}


class StepLog:
    """One record per logged step in ``path``, kept consistent with a resumed run.

    Args:
        path: the file; its suffix (``.jsonl`` or ``.csv``) picks the format.
        start: the step the run starts (or resumes) at. Records after it are
            dropped (a resumed run logs them again); 0 starts an empty log.
        what: what the file holds, for the warning when it cannot be written
            (``"losses"``: "... losses go to TensorBoard only").
    """

    def __init__(self, path: str | os.PathLike, start: int, what: str = "records"):
        self.path = Path(path)
        self.what = what
        if self.path.suffix not in _FORMATS:
            raise ValueError(f"{self.path}: a step log is one of {sorted(_FORMATS)}")
        self._format = _FORMATS[self.path.suffix]()
        self._file = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            kept = [r for r in self._format.read(self.path)
                    if isinstance(r, dict) and r.get("step", math.inf) <= start] \
                if start > 0 and self.path.exists() else []
            self._rewrite(kept)
        except OSError as e:
            self._failed(e)

    def _rewrite(self, records: Sequence[dict]) -> None:
        """Replaces the file by ``records`` (atomically) and opens it for appending."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            self._format.dump(handle, records)
        tmp.replace(self.path)
        self._file = open(self.path, "a", newline="", encoding="utf-8")

    def write(self, step: int, values: dict) -> None:
        """Appends the record ``{"step": step, **values}`` and flushes it."""
        if self._file is None:
            return
        record = {"step": int(step), **values}
        try:
            if self._format.widens(record):
                self._file.close()
                self._rewrite(self._format.read(self.path))
            self._format.append(self._file, record)
            self._file.flush()
        except OSError as e:
            self._failed(e)

    def _failed(self, error: OSError) -> None:
        from piigan_tf.checkpoints import error_text  # TensorFlow: only when a write fails

        log.warning("cannot write %s (%s); %s go to TensorBoard only", self.path,
                    error_text(error), self.what)
        self.close()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


def _cell(value) -> str:
    return str(int(value)) if isinstance(value, (int, np.integer)) else repr(float(value))


def read_loss_log(path: str | os.PathLike) -> list[dict]:
    """The records of a ``losses.jsonl``, skipping a line cut short by a kill."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def write_eval_log(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Writes rows as :func:`read_eval_log` reads them (atomically). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0]) if rows else ["step"]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({k: _cell(row[k]) for k in columns} for row in rows)
    tmp.replace(path)
    return path


def read_eval_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of an ``eval.csv`` as ``{column: number}`` (``step`` an int).

    A row cut short by a kill (missing or unparsable cells) is skipped.
    """
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            try:
                row = {k: float(v) for k, v in raw.items() if k is not None}
                if any(v is None for v in raw.values()) or not math.isfinite(row["step"]):
                    continue
            except (TypeError, ValueError, KeyError):
                continue
            row["step"] = int(row["step"])
            rows.append(row)
    return rows
