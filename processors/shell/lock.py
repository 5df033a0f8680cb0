"""One process per view: `metric` and `plot` (and a replay that rewrites
their views) take an exclusive lock in the logs folder, so a second one
refuses to start instead of interleaving rows or checkpoints."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import UsageError


@contextmanager
def view_lock(config: PipelineConfig, processor: str) -> Iterator[None]:
    path = config.checkpoint_path(processor).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another {processor} process is using {config.logs_dir}; stop it first"
            ) from None
        yield  # the lock goes with the file when it closes, or when the process dies
