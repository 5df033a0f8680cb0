"""Publishing batches and waiting until the broker has confirmed them.

rstream's `send_batch` writes a frame and returns at once; its `send_wait`
waits but is slow. `ConfirmedPublisher` sends with `send_batch` and tracks
the broker's confirms itself, so a caller can await durability per batch
while several batches are in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import rstream

from streams.connection import BrokerError, Watch

Outgoing = rstream.RawMessage | rstream.AMQPMessage


def _confirms_future(done: bool = False) -> asyncio.Future[None]:
    """A batch's confirms. A processor that stops (or loses the broker) with
    batches in flight abandons them, and their waiter may be cancelled
    before it ever looked; rstream then fails the batch as the connection
    closes. That refusal has no one left to tell: it is not an error to log
    as "never retrieved"."""
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
    """Publishes to streams through one rstream `Producer`.

    With a `publisher_name`, the broker deduplicates by publishing id: a
    message whose id is not above the highest already stored for that name is
    dropped (and still confirmed). Callers then set `publishing_id` themselves,
    from something stable such as the source offset + 1. Without a name, ids
    come from a counter of this publisher.
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
        self._confirm_handlers: dict[str, Callable[[rstream.ConfirmationStatus], None]] = {}

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
        if not messages:
            return _confirms_future(done=True)
        batch = _Batch(remaining=len(messages))
        for message in messages:
            if message.publishing_id is None:
                message.publishing_id = self._next_id
                self._next_id += 1
            # Registered before sending: the confirm can arrive before
            # send_batch returns.
            self._batches[(stream, message.publishing_id)] = batch

        try:
            for frame in _frames(messages):
                await self._producer.send_batch(
                    stream, frame, publisher_name=self._publisher_name,
                    on_publish_confirm=self._confirm_handler(stream),
                )
        except BaseException:
            self._forget(stream, messages)
            raise
        return self._awaited(stream, messages, batch.done)

    def _awaited(
        self, stream: str, messages: Sequence[Outgoing], done: asyncio.Future[None]
    ) -> asyncio.Future[None]:
        """`done`, failed after the confirm timeout or when the connection
        goes. A timer and a callback, not a task per batch: at 1,000
        events/s, a batch each, tasks and `asyncio.wait` cost more than
        writing the frame."""
        timer = asyncio.get_running_loop().call_later(self._confirm_timeout_s, self._time_out, stream, done)
        self._unconfirmed.add(done)

        def settled(_: asyncio.Future[None]) -> None:
            timer.cancel()
            self._unconfirmed.discard(done)
            self._forget(stream, messages)

        done.add_done_callback(settled)
        if self._watch.error is not None:  # gone before this batch was sent
            _fail(done, self._watch.error)
        return done

    def _time_out(self, stream: str, done: asyncio.Future[None]) -> None:
        _fail(done, BrokerError(f"RabbitMQ confirmed nothing on {stream} for {self._confirm_timeout_s:g}s"))

    def _fail_unconfirmed(self, error: BrokerError) -> None:
        for done in list(self._unconfirmed):
            _fail(done, error)

    def _confirm_handler(self, stream: str) -> Callable[[rstream.ConfirmationStatus], None]:
        """One handler per stream: rstream checks every confirm against each
        handler it was given, so a new one per batch would cost per batch in
        flight."""
        handler = self._confirm_handlers.get(stream)
        if handler is None:
            def handler(status: rstream.ConfirmationStatus) -> None:
                pending = self._batches.pop((stream, status.message_id), None)
                if pending is None or pending.done.done():
                    return
                if not status.is_confirmed:
                    pending.done.set_exception(BrokerError(
                        f"RabbitMQ refused a message on {stream} (code {status.response_code})"))
                    return
                pending.remaining -= 1
                if pending.remaining == 0:
                    pending.done.set_result(None)

            self._confirm_handlers[stream] = handler
        return handler

    def _forget(self, stream: str, messages: Sequence[Outgoing]) -> None:
        for message in messages:
            self._batches.pop((stream, message.publishing_id), None)  # type: ignore[arg-type]


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


# rstream's send_batch writes one frame whatever its size; RabbitMQ may refuse
# frames above the negotiated frame_max (1 MiB by default).
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
