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
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import rstream
from rstream import ConsumerOffsetSpecification, OffsetType

from nnmon.streams.client.rstream_private import Consumer
from nnmon.streams.events import codec
from nnmon.streams.read.merge import Merge, Record
from nnmon.streams.wire.chunk import Chunk, messages


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


class RecordReader:
    """Merges the messages of one or more streams into batches of `Record`s,
    oldest first by the broker's chunk time (a followed stream shifted by its
    lead: see `follow`).

    Each stream has a bounded queue; the merge (`Merge`) takes from whichever
    stream's next record is oldest, so a stream that runs ahead fills its
    queue and is held back (its rstream callback waits, and no more credit
    goes to the broker). Two streams read side by side thus stay close in
    time, which keeps a join's pending state small even while catching up on
    a backlog.

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
        self._merge = Merge(clock)
        self._consumers: list[Consumer] = []
        self._room: dict[str, asyncio.Event] = {}
        self._arrived = asyncio.Event()

    def follow(self, follower: str, leader: str, hold_s: float = 5.0) -> None:
        """Keep `follower` in step with `leader` (see `Merge.follow`)."""
        self._merge.follow(follower, leader, hold_s)

    def lead(self, follower: str, lead_ms: int) -> None:
        """How far (in chunk time) the leader lags behind `follower` now."""
        self._merge.lead(follower, lead_ms)

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
        queue = self._merge.add_stream(stream)
        room = self._room[stream] = asyncio.Event()

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

    def _arrive(self, records: list[Record]) -> None:
        self._merge.arrive(records)
        self._arrived.set()

    def queued(self) -> int:
        """How many records have arrived and wait to be taken."""
        return self._merge.queued()

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
            batch, held_for_s = self._merge.take(max_records)
            if batch:
                for stream, room in self._room.items():
                    if self._merge.queued(stream) < self._max_queued:
                        room.set()  # a callback waiting for room goes on
                return batch
            waits = [w for w in (held_for_s, None if deadline is None else deadline - loop.time())
                     if w is not None]
            try:
                await asyncio.wait_for(self._arrived.wait(), max(min(waits), 0) if waits else None)
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    return []


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
