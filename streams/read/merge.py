"""The merge of several streams' records, oldest first, and the hold-back
of a stream that runs ahead of its partner.

Pure: records in, batches out; time comes from an injected clock (seconds,
monotonic), so the policy is tested without a broker or an event loop.
`reader.RecordReader` feeds it from the broker and waits on it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from nnmon.streams.events import codec


@dataclass(slots=True)  # not frozen: built per message (see codec.FeaturesEvent)
class Record:
    """One message as read: its stream, offset, chunk time (ms) and bytes,
    and its event when it was read with its whole chunk (see `chunks`)."""

    stream: str
    offset: int
    timestamp_ms: int
    data: bytes
    event: codec.Event | None = None


LEADER_HOLD_S = 0.25
# A partner stream with nothing queued and nothing new for this long brings
# nothing a held record waits for: several chunk gaps at full speed (about
# 1 ms), and short enough not to show in the CSV's latency.
PARTNER_QUIET_S = 0.02


class Merge:
    """Per-stream queues of records, taken oldest first by the broker's
    chunk time (a followed stream shifted by its lead: see `follow`)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock  # how long a held-back record has waited since it arrived
        self._queues: dict[str, deque[Record]] = {}
        self._arrivals: dict[str, deque[float]] = {}  # when each queued record arrived (clock)
        self._newest_ms: dict[str, int] = {}  # chunk time of the newest record arrived, per stream
        self._last_arrival: dict[str, float] = {}  # when (clock) it arrived; added, before any
        self._follows: dict[str, _Following] = {}
        self._followed_by: dict[str, str] = {}  # leader -> its follower

    def add_stream(self, stream: str) -> deque[Record]:
        """A queue for `stream`'s records (returned, for its length)."""
        queue = self._queues[stream] = deque()
        self._arrivals[stream] = deque()
        self._last_arrival[stream] = self._clock()
        return queue

    def follow(self, follower: str, leader: str, hold_s: float = 5.0) -> None:
        """Keep `follower` in step with a `leader` that the broker stores
        `lead_ms` (see `lead`) later: y_true and the y_pred a model writes
        from it a moment afterwards.

        The merge orders a follower's records by their chunk time plus the
        lead, so each truth goes out beside its prediction; a follower record
        whose leader has not yet brought a record `lead_ms` newer waits for
        it, up to `hold_s` after it arrived (a truth whose prediction never
        comes then goes on, to wait and expire in the join). The waiting
        happens in this bounded queue and, beyond it, on the broker, not in
        the join's memory: at full speed metric's pending ids went from
        5,000-37,000 (the event rate times the model's lag) to under 600."""
        self._follows[follower] = _Following(leader, hold_s)
        self._followed_by[leader] = follower

    def lead(self, follower: str, lead_ms: int) -> None:
        """How far (in chunk time) the leader lags behind `follower` now."""
        self._follows[follower].lead_ms = max(lead_ms, 0)

    def arrive(self, records: list[Record]) -> None:
        """Queue records of one stream, as read."""
        if not records:
            return
        stream = records[0].stream
        self._queues[stream].extend(records)
        self._arrivals[stream].extend([self._clock()] * len(records))
        self._newest_ms[stream] = records[-1].timestamp_ms
        self._last_arrival[stream] = self._arrivals[stream][-1]

    def queued(self, stream: str | None = None) -> int:
        """How many records wait to be taken (of `stream`, or of all)."""
        if stream is not None:
            return len(self._queues[stream])
        return sum(len(queue) for queue in self._queues.values())

    def take(self, max_records: int) -> tuple[list[Record], float | None]:
        """The ready records, oldest first (a follower's shifted by its lead,
        so a truth goes out beside its prediction); and, when some are held
        back, the seconds until the first of them is released anyway."""
        queues = self._queues
        now = self._clock()
        batch: list[Record] = []
        while len(batch) < max_records:
            ready = [stream for stream, queue in queues.items()
                     if queue and self._held_s(stream, now) is None]
            if not ready:
                break
            first = min(ready, key=self._merge_key)
            # Take a run from `first`, up to (not including: ties go to the
            # `min` above) the next stream's head, and while its partner has
            # brought what goes with it: one choice per run, not per record
            # (measured as 9% of metric's time).
            until_ms = min([self._merge_key(s) - self._shift_ms(first) - 1 for s in ready if s != first]
                           + [self._free_until_ms(first, now)])
            queue, arrivals = queues[first], self._arrivals[first]
            batch.append(queue.popleft())
            arrivals.popleft()
            while queue and len(batch) < max_records and queue[0].timestamp_ms <= until_ms:
                batch.append(queue.popleft())
                arrivals.popleft()
        held = [s for stream, queue in queues.items() if queue and (s := self._held_s(stream, now))]
        return batch, min(held) if held else None

    def _shift_ms(self, stream: str) -> int:
        following = self._follows.get(stream)
        return following.lead_ms if following else 0

    def _merge_key(self, stream: str) -> int:
        return self._queues[stream][0].timestamp_ms + self._shift_ms(stream)

    def _free_until_ms(self, stream: str, now: float) -> float:
        """The newest chunk time at which `stream`'s records are not held
        back, going by what their partner stream has brought (see `_held_s`).

        A follower's record waits for the leader to bring one `lead_ms`
        newer; a leader's, when the follower queue is empty, for the follower
        to bring one `lead_ms` older. Otherwise nothing waits, and nothing
        waits for a partner that has gone quiet."""
        following = self._follows.get(stream)
        if following is not None:
            partner = following.leader
            until_ms = self._newest_ms.get(partner, -1) - following.lead_ms
        else:
            partner = self._followed_by.get(stream, "")
            if not partner or self._queues[partner]:
                return math.inf  # not a leader, or the merge puts its records in order
            until_ms = self._newest_ms.get(partner, -1) + self._follows[partner].lead_ms
        return math.inf if self._quiet_s(partner, now) >= PARTNER_QUIET_S else until_ms

    def _quiet_s(self, stream: str, now: float) -> float:
        """How long `stream` has had nothing queued and nothing arriving."""
        return 0.0 if self._queues[stream] else now - self._last_arrival[stream]

    def _held_s(self, stream: str, now: float) -> float | None:
        """How much longer `stream`'s next record is held back, waiting for
        its partner stream to deliver what goes with it; None if it is not.

        A follower waits up to `hold_s`; a leader up to LEADER_HOLD_S (the
        gap between two chunks while catching up; a stream that has ended
        must not delay the other long). The limits run from the record's
        arrival here, not from its chunk time: while catching up on a backlog
        every record is old, and still its partner is just behind it.

        Either stops waiting once the partner has been quiet PARTNER_QUIET_S:
        the lead is a low estimate from past pairs, and a prediction can come
        sooner after its truth than that. Its truth then waited for the next
        prediction; after the last event of a burst, or between events at a
        slow pace, none came for `hold_s`, and the row reached the CSV 5 s
        late (the bench's last 600 rows took 4 s; at 5 events/s, the p90
        from publish to CSV was 206 ms, and is 25 ms now)."""
        if self._queues[stream][0].timestamp_ms <= self._free_until_ms(stream, now):
            return None
        following = self._follows.get(stream)
        if following is not None:
            partner, limit_s = following.leader, following.hold_s
        else:
            partner = self._followed_by[stream]
            limit_s = min(self._follows[partner].hold_s, LEADER_HOLD_S)
        waited = now - self._arrivals[stream][0]
        if waited >= limit_s:
            return None
        # A partner with records queued is not quiet until they are taken.
        quiet_in_s = math.inf if self._queues[partner] else PARTNER_QUIET_S - self._quiet_s(partner, now)
        return min(limit_s - waited, quiet_in_s)


@dataclass
class _Following:
    leader: str
    hold_s: float
    lead_ms: int = 0


