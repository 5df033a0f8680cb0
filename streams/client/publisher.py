"""Publishing batches and waiting until the broker has confirmed them.

rstream's `send_batch` writes one stream's frame per call and reports every
confirm message by message (a `ConfirmationStatus` and a callback each);
its `send_wait` waits but is slow. `ConfirmedPublisher` declares publishers
through rstream, then writes the Publish frames itself (byte for byte what
rstream writes) and reads the confirm frames whole, so a caller can await
durability per batch while several batches are in flight, and batches for
several streams go out in one socket write. The connection decodes the
confirm frames with `struct` (see `frames`).

The parts of `rstream.Producer` this needs past its public API are in
`rstream_private`; the tests compare the frames with rstream's own encoder.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rstream
from rstream import schema
from rstream.client import Client

from nnmon.streams.client.connection import BrokerError, ConnectionLost, Watch
from nnmon.streams.client.rstream_private import declare_publisher, read_whole_frames, write_frames

Outgoing = rstream.RawMessage | rstream.AMQPMessage


def _confirms_future(done: bool = False) -> asyncio.Future[None]:
    """A batch's confirms. A processor that stops (or loses the broker) with
    batches in flight abandons them, and their waiter may be cancelled
    before it ever looked; the batch may still fail later, as the
    connection closes. That refusal has no one left to tell: it is not an
    error to log as "never retrieved"."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    if done:
        future.set_result(None)
    return future


@dataclass
class _Batch:
    remaining: int
    done: asyncio.Future[None] = field(default_factory=_confirms_future)


class ConfirmedPublisher:
    """Publishes to streams over the connections of one rstream `Producer`.

    With a `publisher_name`, the broker deduplicates by publishing id: a
    message whose id is not above the highest already stored for that name is
    dropped (and still confirmed). Callers then set `publishing_id` themselves,
    from something stable such as the source offset + 1, or leave it to this
    publisher's counter, which continues above what the broker stored under
    the name on each stream (a restarted writer is not dropped as a repeat).
    Without a name, ids come from that counter from 1.
    """

    def __init__(
        self,
        producer: rstream.Producer,
        publisher_name: str | None = None,
        watch: Watch | None = None,
        confirm_timeout_s: float = 30.0,
    ) -> None:
        self._producer = producer
        self._publisher_name = publisher_name
        self._watch = watch or Watch()
        self._confirm_timeout_s = confirm_timeout_s
        self._next_id = 1
        self._batches: dict[tuple[str, int], _Batch] = {}
        self._unconfirmed: set[asyncio.Future[None]] = set()
        self._watch.when_lost(self._fail_unconfirmed)
        self._routes: dict[str, tuple[int, Client]] = {}
        self._streams: dict[int, str] = {}  # publisher id -> stream, for the confirm frames

    async def publish(self, stream: str, messages: Sequence[Outgoing]) -> None:
        """Send and wait until every message is confirmed (stored) by the broker."""
        await (await self.send(stream, messages))

    async def send(self, stream: str, messages: Sequence[Outgoing]) -> asyncio.Future[None]:
        """Write the messages to the broker now, in order, and return the
        future of their confirms, so several batches can await at once.

        Call `send` from one task, in publishing-id order: with a publisher
        name, the broker drops a message whose id is below one it has stored.
        The future fails with the watch's error if the connection goes away,
        and with `BrokerError` if confirms do not come in time: it never hangs.
        """
        return await self.send_together({stream: messages})

    async def send_together(self, batches: Mapping[str, Sequence[Outgoing]]) -> asyncio.Future[None]:
        """`send` for several streams at once: one future for all their
        confirms, and one socket write per connection (at 1,000 events/s,
        features' two writes an event were a third of its time)."""
        total = sum(len(messages) for messages in batches.values())
        if total == 0:
            return _confirms_future(done=True)
        batch = _Batch(remaining=total)
        writes: dict[Client, list[bytes]] = {}
        try:
            for stream, messages in batches.items():
                publisher_id, client = await self._route(stream)
                for message in messages:
                    if message.publishing_id is None:
                        message.publishing_id = self._next_id
                        self._next_id += 1
                    else:  # sent again, or numbered by the caller: the counter stays above
                        self._next_id = max(self._next_id, message.publishing_id + 1)
                    # Registered before sending: the confirm can arrive
                    # before the write returns.
                    self._batches[(stream, message.publishing_id)] = batch
                writes.setdefault(client, []).extend(
                    publish_frame(publisher_id, frame) for frame in _frames(messages))
            for client, frames in writes.items():
                await _write(client, b"".join(frames))
        except BaseException:
            for stream, messages in batches.items():
                self._forget(stream, messages)
            raise
        return self._awaited(batches, batch.done)

    async def _route(self, stream: str) -> tuple[int, Client]:
        """The publisher id and connection for `stream`, declared through
        rstream the first time (it finds the stream's leader)."""
        route = self._routes.get(stream)
        if route is None:
            publisher_id, client = await declare_publisher(self._producer, stream, self._publisher_name)
            if self._publisher_name is not None:
                stored = await client.query_publisher_sequence(stream, self._publisher_name)
                self._next_id = max(self._next_id, stored + 1)
            route = self._routes[stream] = (publisher_id, client)
            self._streams[publisher_id] = stream
            # One handler per connection and publisher object: rstream calls
            # each handler with every confirm frame of the connection.
            name = f"nnmon-confirms-{id(self)}"
            client.add_handler(schema.PublishConfirm, self._on_confirm, name=name)
            client.add_handler(schema.PublishError, self._on_error, name=name)
            read_whole_frames(client)
        return route

    def _on_confirm(self, frame: schema.PublishConfirm) -> None:
        stream = self._streams.get(frame.publisher_id)
        if stream is None:
            return  # another publisher's, on the same connection
        batches = self._batches
        for publishing_id in frame.publishing_ids:
            pending = batches.pop((stream, publishing_id), None)
            if pending is None or pending.done.done():
                continue
            pending.remaining -= 1
            if pending.remaining == 0:
                pending.done.set_result(None)

    def _on_error(self, frame: schema.PublishError) -> None:
        stream = self._streams.get(frame.publisher_id)
        if stream is None:
            return
        for error in frame.errors:
            pending = self._batches.pop((stream, error.publishing_id), None)
            if pending is not None:
                _fail(pending.done, BrokerError(
                    f"RabbitMQ refused a message on {stream} (code {error.response_code})"))

    def _awaited(
        self, batches: Mapping[str, Sequence[Outgoing]], done: asyncio.Future[None]
    ) -> asyncio.Future[None]:
        """`done`, failed after the confirm timeout or when the connection
        goes. A timer and a callback, not a task per batch: at 1,000
        events/s, a batch each, tasks and `asyncio.wait` cost more than
        writing the frame."""
        streams = ", ".join(batches)
        timer = asyncio.get_running_loop().call_later(self._confirm_timeout_s, self._time_out, streams, done)
        self._unconfirmed.add(done)

        def settled(_: asyncio.Future[None]) -> None:
            timer.cancel()
            self._unconfirmed.discard(done)
            # Confirmed, every message's entry went with its confirm; only a
            # batch that failed or was abandoned leaves entries behind.
            if done.cancelled() or done.exception() is not None:
                for stream, messages in batches.items():
                    self._forget(stream, messages)

        done.add_done_callback(settled)
        if self._watch.error is not None:  # gone before this batch was sent
            _fail(done, self._watch.error)
        return done

    def _time_out(self, streams: str, done: asyncio.Future[None]) -> None:
        _fail(done, BrokerError(f"RabbitMQ confirmed nothing on {streams} for {self._confirm_timeout_s:g}s"))

    def _fail_unconfirmed(self, error: BrokerError) -> None:
        for done in list(self._unconfirmed):
            _fail(done, error)

    def _forget(self, stream: str, messages: Sequence[Outgoing]) -> None:
        for message in messages:
            self._batches.pop((stream, message.publishing_id), None)  # type: ignore[arg-type]


async def _write(client: Client, data: bytes) -> None:
    try:
        await write_frames(client, data)
    except OSError as error:  # ConnectionError included
        raise ConnectionLost(f"connection to the broker lost ({error})") from error


# Publish, version 1: frame size, key, version, publisher id, message count;
# then per message its publishing id, size and bytes.
_PUBLISH_KEY = 2
_PUBLISH_HEADER = struct.Struct(">IHHBI")
_MESSAGE_HEADER = struct.Struct(">QI")


def publish_frame(publisher_id: int, messages: Sequence[Outgoing]) -> bytes:
    """A Publish frame: byte for byte what rstream's `encode_publish` writes."""
    parts = [b""]
    size = _PUBLISH_HEADER.size - 4
    for message in messages:
        data = bytes(message)
        parts.append(_MESSAGE_HEADER.pack(message.publishing_id, len(data)))
        parts.append(data)
        size += _MESSAGE_HEADER.size + len(data)
    parts[0] = _PUBLISH_HEADER.pack(size, _PUBLISH_KEY, 1, publisher_id, len(messages))
    return b"".join(parts)


async def abandon(confirms: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel the waits for confirms still in flight, and let them finish:
    a cancelled `asyncio.gather` left alone is logged as an exception never
    retrieved."""
    waits = list(confirms)
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)


def _fail(done: asyncio.Future[None], error: BrokerError) -> None:
    if not done.done():
        done.set_exception(error)


# RabbitMQ may refuse frames above the negotiated frame_max (1 MiB by
# default): a large batch goes out as several frames.
FRAME_MESSAGES = 1000
FRAME_BYTES = 512 * 1024


def _frames(messages: Sequence[Outgoing]) -> Iterator[Sequence[Outgoing]]:
    """Split `messages` into runs that fit well inside one frame."""
    start, size = 0, 0
    for index, message in enumerate(messages):
        length = 20 + len(bytes(message))  # RawMessage: its bytes as they are
        if index > start and (index - start >= FRAME_MESSAGES or size + length > FRAME_BYTES):
            yield messages[start:index]
            start, size = index, 0
        size += length
    if start < len(messages):
        yield messages[start:]
