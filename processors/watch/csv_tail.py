"""Following the metric log from outside, as `tail -f` does: read only what
was appended since the last look, and start over when the file was cut back
(metric restarting from its checkpoint) or replaced (a replay)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nnmon.processors.core.rows import HEADER

_HEADER_LINE = HEADER.rstrip("\n").encode()


class AppendedBytes:
    """The bytes appended to a file since the last `read`.

    A file cut back and written again between two reads can be longer than
    before by then (metric, restarting, cuts the CSV back to its checkpoint
    and catches up within a second): the last bytes read are kept and
    compared, so a rewrite is noticed whatever the file's length."""

    def __init__(self, path: Path, fingerprint_bytes: int = 256) -> None:
        self.path = path
        self._fingerprint_bytes = fingerprint_bytes
        self._offset = 0
        self._inode: int | None = None
        self._tail = b""  # the last bytes read, just before `_offset`

    def read(self) -> tuple[bool, bytes]:
        """(whether the file started over since the last read, the new bytes)."""
        try:
            with open(self.path, "rb") as file:
                stat = os.fstat(file.fileno())
                restarted = stat.st_ino != self._inode or not self._unchanged(file, stat.st_size)
                if restarted:
                    self._offset, self._inode, self._tail = 0, stat.st_ino, b""
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            restarted, data = self._inode is not None, b""
            self._offset, self._inode, self._tail = 0, None, b""
        self._offset += len(data)
        self._tail = (self._tail + data)[-self._fingerprint_bytes:]
        return restarted, data

    def _unchanged(self, file: BinaryIO, size: int) -> bool:
        """Whether the bytes read last are still where they were."""
        if size < self._offset:
            return False
        file.seek(self._offset - len(self._tail))
        return file.read(len(self._tail)) == self._tail


class RowCounter:
    """Counts the metric log's rows (lines after the header)."""

    def __init__(self, path: Path) -> None:
        self._appended = AppendedBytes(path)
        self._lines = 0

    def rows(self) -> int:
        restarted, data = self._appended.read()
        if restarted:
            self._lines = 0
        self._lines += data.count(b"\n")
        return max(self._lines - 1, 0)


@dataclass(frozen=True)
class Row:
    id: str
    y_true: float
    y_pred: float
    absolute_error: float


class CsvTail:
    """The metric log's rows, as they are appended. A line that is not a
    row (someone else's edit) is skipped and counted in `skipped`."""

    def __init__(self, path: Path) -> None:
        self._appended = AppendedBytes(path)
        self._unfinished = b""  # a row being written while we read
        self.skipped = 0

    def new_rows(self) -> tuple[bool, list[Row]]:
        """(whether the log started over, so earlier rows no longer count;
        the complete rows appended since the last call)."""
        restarted, data = self._appended.read()
        if restarted:
            self._unfinished = b""
        lines = (self._unfinished + data).split(b"\n")
        self._unfinished = lines.pop()
        rows = []
        for line in lines:
            if line == _HEADER_LINE:
                continue
            try:
                event_id, y_true, y_pred, error = line.decode().split(",")
                row = Row(event_id, float(y_true), float(y_pred), float(error))
            except ValueError:  # UnicodeDecodeError is one too
                self.skipped += 1
                continue
            if not 0 <= row.absolute_error < math.inf:
                self.skipped += 1
                continue
            rows.append(row)
        return restarted, rows
