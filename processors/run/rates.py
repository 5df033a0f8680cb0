"""Progress lines: one line every few seconds with counts and rates, instead
of one line per message."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from nnmon.processors.run.throttle import Every


class RateLog:
    """Counts what a processor did and, at most every `every_s` seconds and
    only when the count moved, logs e.g.
    "joined 12000 (+2400 in 5.0s, 480.0/s); pending 3, expired 0".
    """

    def __init__(
        self, log: logging.Logger, verb: str, every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.verb = verb
        self.total = 0
        self._reported = 0
        self._lines = Every(every_s, clock, wait_first=True)

    def add(self, n: int) -> None:
        self.total += n

    def maybe_log(self, details: Callable[[], str] | None = None) -> None:
        """Log the progress line if one is due; `details` is only called then."""
        if not self._lines.passed() or self.total == self._reported:
            return
        elapsed = self._lines.since()
        self._lines.done()
        moved = self.total - self._reported
        self._reported = self.total
        extra = f"; {details()}" if details else ""
        self.log.info("%s %d (+%d in %.1fs, %.1f/s)%s", self.verb, self.total, moved, elapsed,
                      moved / elapsed, extra)
