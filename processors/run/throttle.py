"""Doing something at most every so many seconds: a progress line, a counts
file, a checkpoint, an offset stored, a redraw, a look at the broker."""

from __future__ import annotations

import time
from collections.abc import Callable


class Every:
    """Says when `seconds` have passed since the last time it said so.

    The first `due` is true at once (nothing was done yet), unless
    `wait_first`. Times are from `clock` (seconds, monotonic by default),
    injectable for tests."""

    def __init__(
        self, seconds: float, clock: Callable[[], float] = time.monotonic, wait_first: bool = False
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self.last = clock() if wait_first else -float("inf")

    def due(self) -> bool:
        """True (and counted as done now) if `seconds` have passed since the last time."""
        now = self.clock()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True

    def passed(self) -> bool:
        """Whether `seconds` have passed since the last time, without
        counting it as done now (for when it may turn out not to be)."""
        return self.since() >= self.seconds

    def done(self) -> None:
        """Count it as done now, whether it was due or not (a forced write)."""
        self.last = self.clock()

    def since(self) -> float:
        """Seconds since it was last done."""
        return self.clock() - self.last
