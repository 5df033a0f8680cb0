"""The metric log: a CSV file of joined rows, appended to and flushed per batch.

The file is a view of the streams. Its length in bytes goes into the metric's
checkpoint; on start, anything beyond that length (rows written after the
last checkpoint, or a row cut in half by a kill) is cut off, and the streams
give those rows again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nnmon.processors.core.join import Pair
from nnmon.processors.core.rows import HEADER, Rows, format_rows
from nnmon.processors.shell.atomic import write_atomically
from nnmon.processors.shell.joined import ViewLost


class CsvLog:
    def __init__(self, path: Path, state: dict[str, Any] | None) -> None:
        """Open `path` for appending, keeping the bytes `state` accounts for;
        with no state, start the file afresh with just the header."""
        keep = int(state["csv_bytes"]) if state else 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Unbuffered: each batch goes out whole in one write, and after a
        # failed one (disk full) the file can be cut back to its last row.
        self._file = open(path, "a+b", buffering=0)
        if os.fstat(self._file.fileno()).st_size < keep:
            self._file.close()
            raise ViewLost(f"{path} is shorter than its checkpoint says")
        if keep == 0:
            self._file.truncate(0)
            self._file.write(HEADER.encode())
        else:
            self._file.truncate(keep)
        self._file.seek(0, os.SEEK_END)
        self._file.flush()

    def write(self, pairs: list[Pair]) -> None:
        rows = format_rows(Rows.of(pairs)).encode()
        start = self._file.tell()
        try:
            while rows:
                written = self._file.write(rows) or 0
                rows = rows[written:]
        except OSError as error:
            os.ftruncate(self._file.fileno(), start)  # no partial row left behind
            raise OSError(error.errno, error.strerror, str(self.path)) from None

    def sync(self) -> None:
        try:
            os.fsync(self._file.fileno())
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.path)) from None

    def state(self) -> dict[str, Any]:
        return self.state_of(self._file.tell())

    @staticmethod
    def state_of(size: int) -> dict[str, Any]:
        """The state of a log `size` bytes long (one written whole, say)."""
        return {"csv_bytes": size}

    def close(self) -> None:
        self._file.close()


def write_csv(path: Path, rows: Rows) -> int:
    """Write a whole metric log atomically and durably; returns its size in bytes."""
    text = (HEADER + format_rows(rows)).encode()
    return write_atomically(path, lambda file: file.write(text))
