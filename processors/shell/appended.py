"""A file appended to in whole pieces and cut back to a checkpointed length:
how the metric log and the windows log stay views of the streams.

Its length in bytes goes into the checkpoint; on start, anything beyond that
length (written after the last checkpoint, or cut in half by a kill) is cut
off, and the streams give it again.
"""

from __future__ import annotations

import os
from pathlib import Path


class FileLost(Exception):
    """The file is shorter than its checkpoint says: someone cut or replaced it."""


class AppendedFile:
    def __init__(self, path: Path, header: bytes, keep: int) -> None:
        """Open `path` for appending, keeping its first `keep` bytes; with
        `keep` 0, start it afresh with just the header."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Unbuffered: each piece goes out whole in one write, and after a
        # failed one (disk full) the file can be cut back to its last piece.
        self._file = open(path, "a+b", buffering=0)
        if os.fstat(self._file.fileno()).st_size < keep:
            self._file.close()
            raise FileLost(f"{path} is shorter than its checkpoint says")
        self._file.truncate(keep)
        if keep == 0:
            self._file.write(header)
        self._file.seek(0, os.SEEK_END)

    def append(self, data: bytes) -> None:
        start = self._file.tell()
        try:
            while data:
                data = data[self._file.write(data) or 0:]
        except OSError as error:
            os.ftruncate(self._file.fileno(), start)  # no partial piece left behind
            raise OSError(error.errno, error.strerror, str(self.path)) from None

    def sync(self) -> None:
        try:
            os.fsync(self._file.fileno())
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.path)) from None

    def size(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
