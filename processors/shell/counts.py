"""Each processor's running totals (events published, predicted, joined;
rejected), in `<logs>/.counts/<processor>.json`, for the dashboard and
/metrics.

Offsets cannot stand in for these counts: the broker's offset tracking
writes its own entries into the stream, so a stream's last offset runs
ahead of the messages it holds (measured: 1,935 against 979 in `features`,
where model stores an offset per batch).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from nnmon.processors.run.throttle import Every
from nnmon.processors.shell.atomic import write_atomically

log = logging.getLogger("nnmon.counts")


class CountsFile:
    """Rewrites one processor's totals at most every `every_s` seconds.

    The totals are the process's own, from its start: they go back to zero
    on a restart, as a Prometheus counter does. A failed write is logged
    once and does not stop the processor: these figures are for watching."""

    def __init__(self, logs_dir: Path, processor: str, every_s: float = 5.0) -> None:
        self.path = counts_path(logs_dir, processor)
        self.processor = processor
        self._writes = Every(every_s)
        self._failed = False

    def update(self, counts: dict[str, int], force: bool = False) -> None:
        if force:
            self._writes.done()
        elif not self._writes.due():
            return
        text = json.dumps({"processor": self.processor, "pid": os.getpid(), "updated_at": time.time(),
                           **counts})
        try:
            # Not fsynced: a figure to watch, rewritten every few seconds.
            write_atomically(self.path, lambda file: file.write(text.encode()), durable=False)
        except OSError as error:
            if not self._failed:
                log.warning("cannot write %s (%s); carrying on without it", self.path, error.strerror)
            self._failed = True


def counts_path(logs_dir: Path, processor: str) -> Path:
    return logs_dir / ".counts" / f"{processor}.json"


def read_counts(logs_dir: Path, processor: str) -> dict[str, Any] | None:
    try:
        data = json.loads(counts_path(logs_dir, processor).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
