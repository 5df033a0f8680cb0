"""When `features` sends: a steady schedule, on a grid of sends.

Pure: times in (seconds, from any monotonic clock), counts out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# At full speed, events go out in batches this large: one frame per stream,
# under the broker's 1 MB frame limit (a features message is about 400 bytes).
# The broker stores what a frame brings as one chunk or a few: at 200 it
# spent 3.9-5.0 CPU s per 200,000 events, at 1,000 2.7-2.9 s.
FULL_SPEED_BATCH = 1_000
# Sends are on a grid this fine: above 200 events/s, what fell due since the
# last send goes out together. Each send is a chunk in two streams, and the
# broker's cost (and every reader's) is per chunk: at 1,000 events/s, one
# event a send, the broker used 0.9 of a core, and the plot's reading alone
# raised the 99th percentile latency from 12 to 30 ms. In fives, the broker
# uses 0.35-0.4 of a core, and latency from each event's due time (its wait
# for the grid included) went from p50 7.1 / p99 47-54 ms to 6.3-6.9 / 13-14.
# A 3 ms grid measured 6.9-7.2 / 13 ms.
TICK_S = 0.005


@dataclass
class Pace:
    """A steady schedule: event n is due `n * interval` seconds after the
    first. Behind schedule, everything due goes out at once, so the rate
    holds even when one publish takes longer than the interval. Sends are
    on a grid of `tick` seconds from the first: at intervals shorter than
    that, the events that fell due since the last send go out together."""

    interval: float
    tick: float = TICK_S
    start: float | None = None
    next_send: float = -math.inf

    def to_send(self, now: float, sent: int) -> int:
        """How many events to send at `now`, beyond the `sent` ones. Any
        number but 0 counts as a send at `now`."""
        if self.start is None:
            self.start = now
        if self.interval <= 0:
            return FULL_SPEED_BATCH
        if now < self.next_send:
            return 0
        due = max(math.floor((now - self.start) / self.interval) + 1 - sent, 0)
        if due and self.tick > 0:
            # The next point of the grid: a late wake-up does not delay the ones after.
            self.next_send = self.start + (math.floor((now - self.start) / self.tick) + 1) * self.tick
        return due

    def wait(self, now: float, sent: int) -> float:
        """Seconds until the next send."""
        assert self.start is not None
        return max(self.start + sent * self.interval - now, self.next_send - now, 0.0)
