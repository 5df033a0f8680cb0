"""The metric log: a CSV file of joined rows, appended to and flushed per
batch, a view of the streams (see `appended`); one of metric's views
(`windows_log.MetricViews`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnmon.processors.core.rows import HEADER, Rows, format_rows
from nnmon.processors.shell.appended import AppendedFile, FileLost
from nnmon.processors.shell.atomic import write_atomically
from nnmon.processors.shell.joined import ViewLost


class CsvLog:
    def __init__(self, path: Path, state: dict[str, Any] | None) -> None:
        """Open `path` for appending, keeping the bytes `state` accounts for;
        with no state, start the file afresh with just the header."""
        self.path = path
        try:
            self._file = AppendedFile(path, HEADER.encode(), int(state["csv_bytes"]) if state else 0)
        except FileLost as lost:
            raise ViewLost(str(lost)) from None

    def write_rows(self, rows: Rows) -> None:
        self._file.append(format_rows(rows).encode())

    def sync(self) -> None:
        self._file.sync()

    def state(self) -> dict[str, Any]:
        return self.state_of(self._file.size())

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
