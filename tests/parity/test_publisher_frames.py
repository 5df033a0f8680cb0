"""Publish frames: the same bytes as rstream's, split to fit the broker's
frame size, several streams' in one write; and waiting for confirms: their
arrival, a refusal, their timeout, a lost connection, abandoning them (pure:
a producer whose connection takes writes, and a test that plays the broker)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import rstream
from hypothesis import given, settings
from hypothesis import strategies as st
from rstream import AMQPMessage, RawMessage, schema
from rstream.encoding import encode_publish

from nnmon.streams.client.connection import BrokerError, ConnectionLost, Watch
from nnmon.streams.client.publisher import (
    FRAME_BYTES,
    FRAME_MESSAGES,
    ConfirmedPublisher,
    _Batch,
    _frames,
    abandon,
    publish_frame,
)


def messages(sizes: list[int]) -> list[AMQPMessage]:
    return [AMQPMessage(body=b"x" * size) for size in sizes]


def test_frames_keep_every_message_once_and_in_order() -> None:
    batch = messages([10] * 2500 + [300_000] * 5 + [10] * 3)
    frames = list(_frames(batch))
    assert [m for frame in frames for m in frame] == batch
    assert all(len(frame) <= FRAME_MESSAGES for frame in frames)
    assert all(sum(len(m.body) for m in frame) <= FRAME_BYTES or len(frame) == 1 for frame in frames)


def test_a_message_larger_than_a_frame_goes_alone() -> None:
    batch = messages([10, FRAME_BYTES * 2, 10])
    assert [len(frame) for frame in _frames(batch)] == [1, 1, 1]


def test_no_messages_no_frames() -> None:
    assert list(_frames([])) == []


def test_abandoned_confirms_leave_no_error_behind() -> None:
    """A processor stopping with batches in flight cancels the waits (a
    gather each), and as the connection closes rstream fails the batches
    nobody waits for any more: neither is an exception never retrieved."""

    async def scenario() -> list[str]:
        unretrieved: list[str] = []
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: unretrieved.append(context["message"]))
        waiting = asyncio.gather(asyncio.sleep(10))
        batch = _Batch(remaining=1)
        await abandon([waiting])
        batch.done.set_exception(BrokerError("refused: the connection closed"))
        del waiting, batch
        gc.collect()
        return unretrieved

    assert asyncio.run(scenario()) == []


class SilentClient:
    """An rstream connection that takes writes and never confirms: the
    broker's side is not what these tests are about (test_outage covers a
    broker that goes away). A test plays the broker through `handlers`."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.handlers: dict[type, Callable[[Any], None]] = {}
        self._conn = self
        self._reader = None  # no socket: rstream_private.read_whole_frames leaves it be

    async def _write_frame_raw(self, data: bytes) -> None:
        self.writes.append(data)

    def is_connection_alive(self) -> bool:
        return True

    def add_handler(self, frame_class: type, handler: Callable[[Any], None], name: str) -> None:
        self.handlers[frame_class] = handler


class SilentProducer:
    """The part of `rstream.Producer` a `ConfirmedPublisher` uses: a
    publisher per stream (ids 1, 2... in order of first use), all on one
    connection."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.client = SilentClient()
        self.publisher_ids: dict[str, int] = {}

    async def _get_or_create_publisher(self, stream: str, publisher_name: str | None = None) -> Any:
        publisher_id = self.publisher_ids.setdefault(stream, len(self.publisher_ids) + 1)
        return SimpleNamespace(id=publisher_id, client=self.client)


def rstream_frame(publisher_id: int, batch: list[RawMessage]) -> bytes:
    return encode_publish(schema.Publish(publisher_id=publisher_id, messages=[
        schema.Message(publishing_id=m.publishing_id, filter_value=None, data=bytes(m)) for m in batch]))


@settings(max_examples=200, deadline=None)
@given(publisher_id=st.integers(0, 255),
       batch=st.lists(st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=300)), max_size=20))
def test_publish_frames_are_what_rstream_writes(publisher_id: int, batch: list[tuple[int, bytes]]) -> None:
    raw = [RawMessage(data, publishing_id=i) for i, data in batch]
    assert publish_frame(publisher_id, raw) == rstream_frame(publisher_id, raw)


def test_batches_for_two_streams_go_out_in_one_write_and_settle_on_their_confirms() -> None:
    async def scenario() -> None:
        producer = SilentProducer()
        publisher = ConfirmedPublisher(producer)  # type: ignore[arg-type]
        features = [RawMessage(b"f1"), RawMessage(b"f2")]
        truths = [RawMessage(b"t1"), RawMessage(b"t2")]
        confirms = await publisher.send_together({"features": features, "y_true": truths})
        assert producer.client.writes == [rstream_frame(1, features) + rstream_frame(2, truths)]
        confirm = producer.client.handlers[schema.PublishConfirm]
        confirm(schema.PublishConfirm(publisher_id=1, publishing_ids=[1, 2]))
        confirm(schema.PublishConfirm(publisher_id=9, publishing_ids=[3, 4]))  # not ours
        confirm(schema.PublishConfirm(publisher_id=2, publishing_ids=[3]))
        await asyncio.sleep(0)
        assert not confirms.done()  # y_true's publishing id 4 is still out
        confirm(schema.PublishConfirm(publisher_id=2, publishing_ids=[4]))
        await asyncio.wait_for(confirms, 1)
        assert publisher._batches == {}

    asyncio.run(scenario())


def test_a_refused_message_fails_its_batch_with_the_code() -> None:
    async def scenario() -> None:
        producer = SilentProducer()
        publisher = ConfirmedPublisher(producer)  # type: ignore[arg-type]
        confirms = await publisher.send("s", [RawMessage(b"a"), RawMessage(b"b")])
        producer.client.handlers[schema.PublishError](schema.PublishError(
            publisher_id=1, errors=[schema.PublishingError(publishing_id=2, response_code=18)]))
        with pytest.raises(BrokerError, match="refused a message on s .code 18"):
            await confirms

    asyncio.run(scenario())


def lost_connection(watch: Watch) -> None:
    watch.on_close(rstream.OnClosedErrorInfo("Connection Closed", ["s"]))


def test_confirms_that_never_come_fail_after_the_timeout_and_leave_nothing_behind() -> None:
    async def scenario() -> ConfirmedPublisher:
        publisher = ConfirmedPublisher(SilentProducer(), confirm_timeout_s=0.05)  # type: ignore[arg-type]
        confirms = await publisher.send("s", messages([1, 2]))
        with pytest.raises(BrokerError, match="confirmed nothing on s for 0.05s"):
            await confirms
        await asyncio.sleep(0)  # the clean-up callback
        return publisher

    publisher = asyncio.run(scenario())
    assert publisher._batches == {} and publisher._unconfirmed == set()


def test_a_lost_connection_fails_the_batches_in_flight_and_any_sent_after() -> None:
    async def scenario() -> None:
        watch = Watch()
        publisher = ConfirmedPublisher(SilentProducer(), watch=watch)  # type: ignore[arg-type]
        in_flight = [await publisher.send("s", messages([1])) for _ in range(3)]
        lost_connection(watch)
        for confirms in in_flight:
            with pytest.raises(ConnectionLost, match="lost"):
                await confirms
        sent_after = await publisher.send("s", messages([1]))
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(sent_after, 1)

    asyncio.run(scenario())


def test_cancelled_confirms_are_forgotten() -> None:
    async def scenario() -> ConfirmedPublisher:
        publisher = ConfirmedPublisher(SilentProducer())  # type: ignore[arg-type]
        waiting = asyncio.gather(await publisher.send("s", messages([1, 2, 3])))
        await abandon([waiting])
        await asyncio.sleep(0)
        return publisher

    publisher = asyncio.run(scenario())
    assert publisher._batches == {} and publisher._unconfirmed == set()
