"""Writing a whole file atomically: a temporary file beside it, then a rename.

A reader (and a processor restarting after a crash) sees the old file or the
new one, never half of one. The one way nnmon writes a whole file: the
checkpoints, a replayed CSV, the PNG and the counts files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: Path, write: Callable[[BinaryIO], object], durable: bool = True) -> int:
    """Replace `path` with what `write(file)` writes; returns its size in
    bytes. `durable`: fsync before the rename, so the new content survives a
    power cut once this returns: for what a restart relies on (checkpoints,
    a replayed CSV); a file that is drawn or counted again can skip it.

    Any failure (a full disk, no permission) leaves the old file and no
    temporary one, and raises `OSError` naming `path`."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            if durable:
                os.fsync(file.fileno())
            size = file.tell()
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):  # what failed may be the folder itself
            temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    return size
