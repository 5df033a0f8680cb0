"""Reading streams as batches of raw records, resuming after stored offsets.

rstream calls a callback per message, and an exception in it silently skips
the rest of the chunk. Here the callback only queues the raw bytes; decoding
happens in the processor, where a bad message is caught and reported. The
bounded queue is the back-pressure: when a processor falls behind, the
callback waits, and rstream stops granting the broker credit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import rstream
from rstream import ConsumerOffsetSpecification, OffsetType


@dataclass(frozen=True)
class Record:
    """One message as read: its stream, offset, chunk time (ms) and bytes."""

    stream: str
    offset: int
    timestamp_ms: int
    data: bytes


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
    """Merges the messages of one or more streams into batches of `Record`s.

    Each stream gets a consumer (and so a connection) of its own: with two
    subscriptions on one rstream connection, the busier one was measured
    delivering over a second late while the other kept up.
    """

    def __init__(self, open_consumer: Callable[[], rstream.Consumer], max_queued: int = 20_000) -> None:
        self._open_consumer = open_consumer
        self._consumers: list[rstream.Consumer] = []
        self._queue: asyncio.Queue[Record] = asyncio.Queue(max_queued)

    async def __aenter__(self) -> RecordReader:
        return self

    async def __aexit__(self, *_: object) -> None:
        for consumer in self._consumers:
            await consumer.close()

    async def subscribe(self, stream: str, start: ConsumerOffsetSpecification) -> None:
        async def on_message(data: bytes, context: rstream.MessageContext) -> None:
            await self._queue.put(Record(stream, context.offset, context.timestamp, data))

        consumer = self._open_consumer()
        self._consumers.append(consumer)
        await consumer.start()
        # A large initial credit keeps several chunks on the way while the
        # processor works on the current one.
        await consumer.subscribe(stream, on_message, offset_specification=start, initial_credit=50)

    async def next_batch(self, max_records: int = 5_000, timeout: float | None = None) -> list[Record]:
        """Wait for at least one record (or `timeout` seconds: then empty),
        then take whatever else is already waiting, up to `max_records`.

        Never waits for a batch to fill: a lone event goes through at once.
        """
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        batch = [first]
        while len(batch) < max_records and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch


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


async def unsubscribe_quietly(consumer: rstream.Consumer, subscription: int) -> None:
    """Unsubscribe, unless the connection (and with it the subscription) is gone."""
    try:
        await consumer.unsubscribe(subscription)
    except (KeyError, OSError, rstream.ServerError):
        pass
