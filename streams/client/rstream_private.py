"""Every place nnmon reaches past rstream's public API, in one module.

rstream is fast enough for nnmon only with a few of its internals changed;
each is named here, with what it replaces and why, and nowhere else in the
package (a test holds the rest of the code to `PRIVATE_NAMES`). rstream is
pinned to the minor version this was written against and checked at import:
an upgrade fails here, loudly, not somewhere deep in a processor.

- Reading: rstream reads its socket 256 bytes at a time (`read_size`), and
  decodes every frame field by field; `read_whole_frames` makes a
  connection read each frame whole and decode it with `frames.decode_frame`.
- Consuming: rstream calls a callback per message, with a `MessageContext`
  built for each: about a microsecond a message before any decoding starts.
  `Consumer.subscribe_chunks` hands over each chunk as the broker delivered
  it instead (see `nnmon.streams.events.chunks`). rstream also closes a
  connection as soon as its last subscription goes, and every close sleeps
  0.2 s: a probe (subscribe, take a chunk, unsubscribe) cost 0.2 s and a new
  connection. Here the connection stays open for the next subscription,
  until `close`, which closes the connections side by side.
- Publishing: `declare_publisher` and `write_frames` let
  `publisher.ConfirmedPublisher` declare publishers through rstream, then
  write the Publish frames itself (see there).
- Noticing silence: rstream only logs when heartbeats stop, and its reads
  have no deadline, so a silent network or a stopped broker left processors
  waiting for about 15 minutes. `connections` and `last_heard` let
  `connection.Watch` see how long each connection has heard nothing, and
  `cut` aborts one, which rstream then reports as closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import rstream
import rstream.connection
from rstream import ConsumerOffsetSpecification, OffsetType, schema
from rstream.client import BaseClient, Client
from rstream.connection import ConnectionClosed
from rstream.consumer import _Subscriber

from nnmon.streams.client.frames import FRAME_SIZE, decode_frame
from nnmon.streams.wire.chunk import Chunk

TESTED_VERSION = "1.1."  # rstream 1.1.x: what this module was written against and is tested with
if not rstream.__version__.startswith(TESTED_VERSION):
    raise ImportError(f"nnmon needs rstream {TESTED_VERSION}x (it reaches past rstream's public API in "
                      f"{__name__}), found {rstream.__version__}: pip install 'rstream>=1.1.1,<1.2'")

# The rstream internals used here (attributes, methods, a module constant);
# the rest of the package uses none of them.
PRIVATE_NAMES = frozenset({
    "CHUNK_SIZE", "read_frame", "_conn", "_reader", "_buffer", "_write_frame_raw", "_lock",
    "_get_or_create_publisher", "_subscribers", "_on_deliver", "_remove_stream_from_client",
    "_clients", "_pool", "_default_client", "_Subscriber", "_last_heartbeat", "_heartbeat", "_writer",
})


def read_size(size: int) -> None:
    """How much a connection asks of its socket at a time, where rstream
    still reads itself (a module constant, read at each call): 256 bytes by
    default, a coroutine round trip each; 14% of a replay's time went there,
    for chunks of hundreds of KB. What a read brings beyond a frame stays in
    rstream's buffer for the next frame."""
    rstream.connection.CHUNK_SIZE = size


read_size(64 * 1024)


def read_whole_frames(client: BaseClient) -> None:
    """Make `client`'s connection read whole frames (readexactly: rstream
    reads the socket 256 bytes at a time, an await and a copy each, some 400
    for a chunk of 100 kB, about 0.3 s of a replay of 200,000 rows) and
    decode them with `frames.decode_frame`. Replaces the connection's
    `read_frame`; what rstream already read ahead is taken first, and the end
    of the connection is still its `ConnectionClosed`."""
    connection = client._conn
    if connection is None or connection._reader is None:
        return
    reader = connection._reader
    read_ahead = connection._buffer  # what rstream read past the frames it has given out

    async def read_exactly(size: int) -> bytes:
        try:
            if not read_ahead:
                return await reader.readexactly(size)
            head = bytes(read_ahead[:size])
            del read_ahead[:size]
            return head if len(head) == size else head + await reader.readexactly(size - len(head))
        except asyncio.IncompleteReadError:
            raise ConnectionClosed from None  # as rstream reports the end of the connection

    async def read_frame() -> schema.Frame:
        size = FRAME_SIZE.unpack(await read_exactly(FRAME_SIZE.size))[0]
        return decode_frame(await read_exactly(size))

    connection.read_frame = read_frame  # type: ignore[method-assign]


async def declare_publisher(
    producer: rstream.Producer, stream: str, publisher_name: str | None
) -> tuple[int, Client]:
    """Declare a publisher on `stream` through rstream (it finds the
    stream's leader and remembers the publisher for the producer's close);
    its id and connection."""
    async with producer._lock:
        publisher = await producer._get_or_create_publisher(stream, publisher_name=publisher_name)
    return publisher.id, publisher.client


async def write_frames(client: Client, data: bytes) -> None:
    """Write frames on an rstream connection, as its `send_publish_frame`
    does, but failing loudly (`ConnectionError`) where rstream logs and
    drops the frame."""
    connection = client._conn
    if connection is None or not client.is_connection_alive():
        raise ConnectionError("closed before a publish")
    await connection._write_frame_raw(data)


def connections(entity: rstream.Consumer | rstream.Producer) -> list[Client]:
    """The open connections of a consumer or producer (locators included)."""
    return [client for group in entity._pool._clients.values() for client in group
            if client.is_connection_alive()]


def last_heard(client: Client) -> float | None:
    """When (time.monotonic) the connection last received a whole frame, a
    heartbeat included; None where silence says nothing: before the
    connection's tuning, or with heartbeats switched off (a broker whose
    `stream.heartbeat` is 0)."""
    heard = client._last_heartbeat  # rstream stamps it on every frame read
    return heard if heard and client._heartbeat else None


def cut(client: Client) -> None:
    """Abort the connection: its reader sees the end, and rstream reports it
    closed (to the consumer's or producer's on_close_handler) as for a reset."""
    connection = client._conn
    if connection is not None and connection._writer is not None:
        connection._writer.transport.abort()


OnChunk = Callable[[Chunk], Awaitable[None] | None]


class Consumer(rstream.Consumer):
    """rstream's Consumer with whole-chunk subscriptions (`subscribe_chunks`),
    connections kept for the next subscription, and closed side by side."""

    async def __aenter__(self) -> Consumer:
        await super().__aenter__()
        return self

    async def subscribe_chunks(
        self, stream: str, on_chunk: OnChunk, offset_specification: ConsumerOffsetSpecification,
        initial_credit: int = 10, subscriber_name: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> int:
        """Like `subscribe`, but `on_chunk` gets each chunk whole; when it
        returns an awaitable, the next chunk waits for it.

        Credit goes back to the broker for half the initial credit at once,
        not chunk by chunk: each grant is a socket write, measured as 8% of
        metric's time with the small chunks of a live pipeline."""
        callback = _ChunkCallback(on_chunk, credit_batch=max(initial_credit // 2, 1))
        subscription = await self.subscribe(
            stream, callback, offset_specification=offset_specification,
            initial_credit=initial_credit, subscriber_name=subscriber_name, properties=properties)
        read_whole_frames(self._subscribers[subscription].client)
        return subscription

    async def _on_deliver(
        self, frame: schema.Deliver, subscriber: _Subscriber, filter_value: Any
    ) -> None:
        callback = subscriber.callback
        if not isinstance(callback, _ChunkCallback):
            await super()._on_deliver(frame, subscriber, filter_value)
            return
        if frame.subscription_id != subscriber.subscription_id:
            return  # another subscription's, on the same connection
        callback.owed_credit += 1
        if callback.owed_credit >= callback.credit_batch:
            await subscriber.client.credit(subscriber.subscription_id, callback.owed_credit)
            callback.owed_credit = 0
        # As rstream does: the first chunk of a subscription at an offset
        # can begin before it; the offset then moves on to the chunk's end.
        skip = 0
        if subscriber.offset_type is OffsetType.OFFSET:
            skip = max(subscriber.offset - frame.chunk_first_offset, 0)
        subscriber.offset = frame.chunk_first_offset + frame.num_entries
        waiting = callback.on_chunk(Chunk(subscriber.stream, frame.chunk_first_offset, frame.timestamp,
                                          frame.num_entries, frame.num_records, frame.data, skip))
        if waiting is not None:
            await waiting

    async def _remove_stream_from_client(self, stream: str) -> None:
        client = self._clients.pop(stream, None)
        if client is not None:  # it stays in the pool, for the next stream
            await client.remove_stream(stream)
            await client.free_available_id()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """rstream's `close`, with the connections closed side by side."""
        self.stop()
        for subscriber in list(self._subscribers.values()):
            if subscriber.client.is_connection_alive():
                await self.unsubscribe(subscriber.subscription_id)
        self._subscribers.clear()
        clients = [client for group in self._pool._clients.values() for client in group]
        self._pool._clients.clear()
        self._clients.clear()
        self._default_client = None
        await asyncio.gather(*(client.close() for client in clients))


class _ChunkCallback:
    """Marks a chunk subscription; rstream never calls it per message."""

    def __init__(self, on_chunk: OnChunk, credit_batch: int) -> None:
        self.on_chunk = on_chunk
        self.credit_batch = credit_batch
        self.owed_credit = 0  # chunks delivered since credit was last granted

    def __call__(self, message: object, context: rstream.MessageContext) -> None:
        raise TypeError("a chunk subscription takes no messages")
