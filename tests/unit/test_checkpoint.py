"""Unit tests for nnmon.processors.shell.checkpoint: the atomic JSON checkpoint file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnmon.processors.shell.checkpoint import Checkpoint, load, save

STREAMS = ("nnmon.y_true", "nnmon.y_pred")
CHECKPOINT = Checkpoint(
    streams={"nnmon.y_true": 41, "nnmon.y_pred": None},
    state={"join": {"newest_ms": 5, "pending": {"y_true": [["a", 1.5, 3, 5]]}}, "rows": 7},
)


def written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "metric.checkpoint.json"
    save(path, CHECKPOINT)
    assert load(path, STREAMS) == CHECKPOINT
    assert load(path, tuple(reversed(STREAMS))) == CHECKPOINT


def test_save_replaces_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    save(path, CHECKPOINT)
    newer = Checkpoint({"nnmon.y_true": 99, "nnmon.y_pred": 12}, {"rows": 8})
    save(path, newer)
    assert load(path, STREAMS) == newer


def test_save_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "checkpoint.json"
    save(path, CHECKPOINT)
    assert load(path, STREAMS) == CHECKPOINT


def test_missing_file(tmp_path: Path) -> None:
    assert load(tmp_path / "nothing.json", STREAMS) is None


@pytest.mark.parametrize(
    "streams", [("nnmon.y_true",), ("nnmon.y_true", "nnmon.y_pred", "other"), ("x", "y")]
)
def test_checkpoint_for_other_streams_is_ignored(tmp_path: Path, streams: tuple[str, ...]) -> None:
    path = tmp_path / "checkpoint.json"
    save(path, CHECKPOINT)
    assert load(path, streams) is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"{",
        b"not json at all",
        b'{"format":1,"streams":{"nnmon.y_true":1,',
        b'{"format":2,"streams":{"nnmon.y_true":1,"nnmon.y_pred":2},"state":{}}',
        b"null",
        b"[]",
        b"42",
        b'"text"',
        b'{"format":1,"streams":{"nnmon.y_true":1,"nnmon.y_pred":2}}',
        b'{"format":1,"streams":["nnmon.y_true","nnmon.y_pred"],"state":{}}',
    ],
)
def test_garbage_gives_none(tmp_path: Path, content: bytes) -> None:
    assert load(written(tmp_path / "checkpoint.json", content), STREAMS) is None


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    save(path, CHECKPOINT)
    save(path, CHECKPOINT)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]
