"""Splitting a publish into frames that fit the broker's frame size, and
waiting for confirms: their timeout, a lost connection, abandoning them
(pure: a producer that takes frames and never confirms)."""

from __future__ import annotations

import asyncio
import gc

import pytest
import rstream
from rstream import AMQPMessage

from streams.connection import BrokerError, ConnectionLost, Watch
from streams.publisher import FRAME_BYTES, FRAME_MESSAGES, ConfirmedPublisher, _Batch, _frames, abandon


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


class SilentProducer:
    """Takes frames and never confirms them: the broker's side is not what
    these tests are about (test_outage covers a broker that goes away)."""

    def __init__(self) -> None:
        self.frames: list[list[AMQPMessage]] = []

    async def send_batch(self, stream: str, frame: list[AMQPMessage], **_: object) -> list[int]:
        self.frames.append(frame)
        return []


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
