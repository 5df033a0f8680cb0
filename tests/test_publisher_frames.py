"""Splitting a publish into frames that fit the broker's frame size, and
abandoning confirms in flight (pure)."""

from __future__ import annotations

import asyncio
import gc

from rstream import AMQPMessage

from streams.connection import BrokerError
from streams.publisher import FRAME_BYTES, FRAME_MESSAGES, _Batch, _frames, abandon


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
