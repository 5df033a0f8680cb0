"""shell.atomic.write_atomically: the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from nnmon.processors.shell.atomic import write_atomically


def test_writes_the_whole_file_and_returns_its_size(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "view.csv"
    assert write_atomically(path, lambda file: file.write(b"a,b\n1,2\n")) == 8
    assert path.read_bytes() == b"a,b\n1,2\n"
    assert write_atomically(path, lambda file: file.write(b"new"), durable=False) == 3
    assert path.read_bytes() == b"new"
    assert sorted(os.listdir(path.parent)) == ["view.csv"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_bytes(b"old")

    def fail_halfway(file: BinaryIO) -> None:
        file.write(b"half of the new")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as raised:
        write_atomically(path, fail_halfway)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.json"]


def test_a_folder_that_cannot_be_made_is_an_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    path = tmp_path / "file" / "view.png"  # its folder would be a file
    with pytest.raises(OSError) as raised:
        write_atomically(path, lambda file: file.write(b"png"))
    assert raised.value.filename == str(path)
