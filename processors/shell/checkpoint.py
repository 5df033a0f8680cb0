"""A processor's checkpoint: its state and the offsets that state covers.

Written atomically and durably (`atomic.write_atomically`), so after a crash
the file holds either the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnmon.processors.shell.atomic import write_atomically

log = logging.getLogger("nnmon.checkpoint")

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    streams: dict[str, int | None]  # stream name -> last processed offset
    state: dict[str, Any]


def offset_in(saved: Checkpoint, stream: str) -> int | None:
    """The last offset `saved` covers in `stream` (None: none read); raises
    KeyError or ValueError for a damaged checkpoint."""
    value = saved.streams[stream]
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"offset {value!r} in checkpoint")


def load(path: Path, streams: tuple[str, ...]) -> Checkpoint | None:
    """The checkpoint at `path` if it is readable and covers exactly `streams`."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("ignoring unreadable checkpoint %s: %s", path, error)
        return None
    if not (
        isinstance(data, dict)
        and data.get("format") == FORMAT_VERSION
        and isinstance(data.get("streams"), dict)
        and isinstance(data.get("state"), dict)
    ):
        log.warning("ignoring checkpoint %s: not a checkpoint of this version", path)
        return None
    if sorted(data["streams"]) != sorted(streams):
        log.warning("ignoring checkpoint %s: it belongs to other streams", path)
        return None
    return Checkpoint(data["streams"], data["state"])


def save(path: Path, checkpoint: Checkpoint) -> None:
    text = json.dumps(
        {"format": FORMAT_VERSION, "streams": checkpoint.streams, "state": checkpoint.state},
        separators=(",", ":"),
    )
    write_atomically(path, lambda file: file.write(text.encode()))
