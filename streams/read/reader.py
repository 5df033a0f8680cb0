"""Reading streams as batches of records, resuming after stored offsets.

An exception in an rstream callback silently skips the rest of the chunk.
Here the callback only queues the chunk's records: the raw bytes, and the
events when the whole chunk reads at once (`nnmon.streams.events.chunks`, whose fast
path raises on no input); anything else is decoded in the processor, where
a bad message is caught and reported. The bounded queue is the
back-pressure: when a processor falls behind, the callback waits, and no
more credit goes to the broker.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import rstream
from rstream import ConsumerOffsetSpecification, OffsetType

from nnmon.streams.client.rstream_private import Consumer
from nnmon.streams.events import codec
from nnmon.streams.wire.chunk import Chunk, messages


@dataclass(slots=True)  # not frozen: built per message (see codec.FeaturesEvent)
class Record:
    """One message as read: its stream, offset, chunk time (ms) and bytes,
    and its event when it was read with its whole chunk (see `chunks`)."""

    stream: str
    offset: int
    timestamp_ms: int
    data: bytes
    event: codec.Event | None = None


def after(offset: int | None) -> ConsumerOffsetSpecification:
    """Where to start reading: just after `offset`, or the stream's first
    message when nothing was processed yet."""
    if offset is None:
        return ConsumerOffsetSpecification(OffsetType.FIRST, None)
    return ConsumerOffsetSpecification(OffsetType.OFFSET, offset + 1)


async def stored_offset(consumer: rstream.Consumer, stream: str, name: str) -> int | None:
    """The last offset `name` stored as processed on `stream`, or None."""
    try:
        return await consumer.query_offset(stream, name)
    except rstream.OffsetNotFound:
        return None


LEADER_HOLD_S = 0.25
# A partner stream with nothing queued and nothing new for this long brings
# nothing a held record waits for: several chunk gaps at full speed (about
# 1 ms), and short enough not to show in the CSV's latency.
PARTNER_QUIET_S = 0.02


class RecordReader:
    """Merges the messages of one or more streams into batches of `Record`s,
    oldest first by the broker's chunk time (a followed stream shifted by its
    lead: see `follow`).

    Each stream has a bounded queue; the merge takes from whichever stream's
    next record is oldest, so a stream that runs ahead fills its queue and is
    held back (its rstream callback waits, and no more credit goes to the
    broker). Two streams read side by side thus stay close in time, which
    keeps a join's pending state small even while catching up on a backlog.

    Each stream gets a consumer (and so a connection) of its own: with two
    subscriptions on one rstream connection, the busier one was measured
    delivering over a second late while the other kept up.
    """

    def __init__(
        self, open_consumer: Callable[[], Consumer], max_queued: int = 2_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_consumer = open_consumer
        self._max_queued = max_queued  # per stream
        self._clock = clock  # how long a held-back record has waited since it arrived
        self._consumers: list[Consumer] = []
        self._queues: dict[str, deque[Record]] = {}
        self._arrivals: dict[str, deque[float]] = {}  # when each queued record arrived (clock)
        self._room: dict[str, asyncio.Event] = {}
        self._arrived = asyncio.Event()
        self._newest_ms: dict[str, int] = {}  # chunk time of the newest record arrived, per stream
        self._last_arrival: dict[str, float] = {}  # when (clock) it arrived; subscribed, before any
        self._follows: dict[str, _Following] = {}
        self._followed_by: dict[str, str] = {}  # leader -> its follower

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

    async def __aenter__(self) -> RecordReader:
        return self

    async def __aexit__(self, *_: object) -> None:
        for consumer in self._consumers:
            await close_quietly(consumer)

    async def subscribe(
        self, stream: str, start: ConsumerOffsetSpecification, name: str | None = None,
        read: Callable[[Chunk], Sequence[codec.Event] | None] | None = None,
    ) -> None:
        """Read `stream` from `start`; `name` (the name offsets are stored
        under) shows as the consumer's reference in the management UI.
        `read` reads a chunk's events at once (see `chunks`), when it can:
        their records come with the event."""
        self._add_queue(stream)
        queue, room = self._queues[stream], self._room[stream]

        async def arrive_when_room(records: list[Record]) -> None:
            while len(queue) >= self._max_queued:
                room.clear()
                await room.wait()
            self._arrive(records)

        def on_chunk(chunk: Chunk) -> Awaitable[None] | None:
            records = [Record(stream, offset, chunk.timestamp_ms, data)
                       for offset, data in messages(chunk)]
            events = None if read is None else read(chunk)
            if events is not None:
                for record, event in zip(records, events):
                    record.event = event
            # The consumer awaits what this returns, if anything: only a
            # full queue costs a coroutine.
            if len(queue) >= self._max_queued:
                return arrive_when_room(records)
            self._arrive(records)
            return None

        consumer = self._open_consumer()
        self._consumers.append(consumer)
        await consumer.start()
        # Credit for several chunks keeps data on the way while the
        # processor works on the current batch.
        # rstream keeps `subscriber_name` to itself; the management UI shows
        # a subscription's `name` property.
        await consumer.subscribe_chunks(stream, on_chunk, start, initial_credit=10, subscriber_name=name,
                                        properties=None if name is None else {"name": name})

    def _add_queue(self, stream: str) -> None:
        self._queues[stream], self._arrivals[stream], self._room[stream] = deque(), deque(), asyncio.Event()
        self._last_arrival[stream] = self._clock()

    def _arrive(self, records: list[Record]) -> None:
        """Queue records of one stream as read (the merge itself is tested
        through this)."""
        if not records:
            return
        stream = records[0].stream
        self._queues[stream].extend(records)
        self._arrivals[stream].extend([self._clock()] * len(records))
        self._newest_ms[stream] = records[-1].timestamp_ms
        self._last_arrival[stream] = self._arrivals[stream][-1]
        self._arrived.set()

    def queued(self) -> int:
        """How many records have arrived and wait to be taken."""
        return sum(len(queue) for queue in self._queues.values())

    async def next_batch(self, max_records: int = 1_000, timeout: float | None = None) -> list[Record]:
        """Wait for at least one record that is not held back (or `timeout`
        seconds: then empty), then take whatever else is ready, up to
        `max_records`.

        Never waits for a batch to fill: a lone event goes through at once.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            self._arrived.clear()
            batch, held_for_s = self._take(max_records)
            if batch:
                return batch
            waits = [w for w in (held_for_s, None if deadline is None else deadline - loop.time())
                     if w is not None]
            try:
                await asyncio.wait_for(self._arrived.wait(), max(min(waits), 0) if waits else None)
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    return []

    def _take(self, max_records: int) -> tuple[list[Record], float | None]:
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
            self._room[first].set()
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


@dataclass(frozen=True)
class Position:
    """A message's offset and the time (ms) the broker stored its chunk."""

    offset: int
    timestamp_ms: int


async def last_position(consumer: rstream.Consumer, stream: str, wait_s: float = 2.0) -> Position | None:
    """The last message `stream` holds now; None when nothing arrives within
    `wait_s` (an empty stream, or a broker too slow to tell: check `first`).

    RabbitMQ reports no such figure before 3.11, so this subscribes at LAST,
    which delivers the last chunk whole, and takes its highest offset.
    """
    found = await _probe(consumer, stream, ConsumerOffsetSpecification(OffsetType.LAST, None), wait_s)
    return found[-1] if found else None


async def position_at(
    consumer: rstream.Consumer, stream: str, start: ConsumerOffsetSpecification, wait_s: float = 2.0
) -> Position | None:
    """The first message a subscription at `start` would get now; None when
    there is none (`start` is past the end, or the stream is empty). With
    FIRST: the oldest message retention has left."""
    found = await _probe(consumer, stream, start, wait_s)
    return found[0] if found else None


async def _probe(
    consumer: rstream.Consumer, stream: str, start: ConsumerOffsetSpecification, wait_s: float
) -> list[Position]:
    found: list[Position] = []
    chunk_delivered = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_message(data: bytes, context: rstream.MessageContext) -> None:
        # rstream hands a chunk's messages to a plain (non-async) callback in
        # one go, without yielding to the event loop: by the time this
        # scheduled call runs, the whole chunk has been seen.
        if not found:
            loop.call_soon(chunk_delivered.set)
        found.append(Position(context.offset, context.timestamp))

    subscription = await consumer.subscribe(stream, on_message, offset_specification=start, initial_credit=1)
    try:
        await asyncio.wait_for(chunk_delivered.wait(), wait_s)
    except TimeoutError:
        pass
    finally:
        await unsubscribe_quietly(consumer, subscription)
    return found


async def close_quietly(consumer: rstream.Consumer) -> None:
    """Close a consumer whose connection may already be gone.

    When a connection drops, rstream's own clean-up may remove a subscription
    while `close` is unsubscribing it (a KeyError); a second `close` finds it
    gone and closes the connections that remain."""
    for _ in range(2):
        try:
            await consumer.close()
            return
        except KeyError:
            continue
        except (OSError, TimeoutError, rstream.ServerError):
            return


async def unsubscribe_quietly(consumer: rstream.Consumer, subscription: int) -> None:
    """Unsubscribe, unless the connection (and with it the subscription) is gone."""
    try:
        await consumer.unsubscribe(subscription)
    except (KeyError, OSError, rstream.ServerError):
        pass
