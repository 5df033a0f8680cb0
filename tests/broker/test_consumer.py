"""nnmon.streams.client.rstream_private against the real broker: whole-chunk subscriptions, and
connections kept between subscriptions."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from rstream import ConsumerOffsetSpecification, OffsetType

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.intake import Intake
from nnmon.streams.client.connection import open_consumer, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.client.rstream_private import Consumer
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import chunks, codec
from nnmon.streams.read.reader import last_position, position_at
from nnmon.streams.wire.chunk import Chunk

FIRST = ConsumerOffsetSpecification(OffsetType.FIRST)


async def read_chunks(consumer: Consumer, stream: str, start: ConsumerOffsetSpecification,
                      last: int, initial_credit: int = 10) -> list[Chunk]:
    """The chunks from `start` up to the one that holds offset `last`."""
    got: list[Chunk] = []
    done = asyncio.Event()

    def on_chunk(chunk: Chunk) -> None:
        got.append(chunk)
        if chunk.last_offset >= last:
            done.set()

    subscription = await consumer.subscribe_chunks(stream, on_chunk, start, initial_credit)
    await asyncio.wait_for(done.wait(), 20)
    await consumer.unsubscribe(subscription)
    return got


def decoded(got: list[Chunk]) -> list[tuple[int, codec.TruthEvent]]:
    intake = Intake(logging.getLogger("test"), "test", keep_rejects=False)
    return [pair for c in got for pair in intake.decode_messages(c, codec.TruthEvent)]


def truths(count: int) -> list[codec.TruthEvent]:
    return [codec.TruthEvent(f"t{i}", i + 0.5, 1_700_000_000_000 + i) for i in range(count)]


@pytest.mark.parametrize("initial_credit", [1, 4])
def test_a_chunk_subscription_at_an_offset_gets_each_event_from_there_once(
    config: PipelineConfig, initial_credit: int
) -> None:
    """Ten publishes: chunks begin before the offset subscribed at, and there
    are more of them than the initial credit."""
    events = truths(30)
    stream = config.names.y_true

    async def scenario() -> list[tuple[int, codec.TruthEvent]]:
        async with open_consumer(config.broker, "nnmon-tests") as consumer, \
                open_producer(config.broker, "nnmon-tests") as producer:
            await declare_streams(consumer, config.names.all(), config.retention)
            publisher = ConfirmedPublisher(producer)
            for part in range(10):
                await publisher.publish(stream, [codec.encode(e) for e in events[part * 3:part * 3 + 3]])
            got = await read_chunks(consumer, stream, ConsumerOffsetSpecification(OffsetType.OFFSET, 16), 29,
                                    initial_credit)
            assert len(got) > initial_credit and got[0].skip == 1
            read_at_once = [event for c in got for event in chunks.read_truths(c) or []]
            assert read_at_once == [event for _, event in decoded(got)]  # the fast path read them all
            return decoded(got)

    assert asyncio.run(scenario()) == list(zip(range(16, 30), events[16:]))


def test_a_sub_entry_batch_is_read_message_by_message(config: PipelineConfig) -> None:
    """Another client may batch several messages in one entry; they get an
    offset each, and decode one by one."""
    events = truths(5)
    stream = config.names.y_true

    async def scenario() -> tuple[list[Chunk], list[tuple[int, codec.TruthEvent]]]:
        async with open_consumer(config.broker, "nnmon-tests") as consumer, \
                open_producer(config.broker, "nnmon-tests") as producer:
            await declare_streams(consumer, config.names.all(), config.retention)
            await producer.send_sub_entry(stream, [codec.encode(e) for e in events])
            got = await read_chunks(consumer, stream, FIRST, 4)
            return got, decoded(got)

    got, read = asyncio.run(scenario())
    assert (got[0].entries, got[0].records) == (1, 5)
    assert chunks.read_truths(got[0]) is None
    assert read == list(zip(range(5), events))


def broker_connections(port: int) -> int:
    """This process's established TCP connections to `port` on the broker."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def test_probes_share_one_connection_and_close_leaves_none(config: PipelineConfig) -> None:
    stream = config.names.y_true
    port = config.broker.port

    async def scenario() -> list[int]:
        seen = [broker_connections(port)]
        async with open_consumer(config.broker, "nnmon-tests") as consumer, \
                open_producer(config.broker, "nnmon-tests") as producer:
            await declare_streams(consumer, config.names.all(), config.retention)
            await ConfirmedPublisher(producer).publish(stream, [codec.encode(e) for e in truths(3)])
            await producer.close()
            for _ in range(3):
                assert (await last_position(consumer, stream)).offset == 2  # type: ignore[union-attr]
                assert (await position_at(consumer, stream, FIRST)).offset == 0  # type: ignore[union-attr]
                seen.append(broker_connections(port))
        seen.append(broker_connections(port))
        return seen

    before, *probing, after = asyncio.run(scenario())
    # The locator connection and one for the subscriptions, which stays
    # open from one probe to the next, and is closed with the consumer.
    assert probing == [before + 2] * 3
    assert after == before


def test_rstream_reads_its_socket_in_large_pieces() -> None:
    """nnmon.streams.client.rstream_private raises rstream's read size from 256 bytes; this
    fails if an rstream upgrade renames or stops reading that constant."""
    import inspect

    import rstream.connection

    assert rstream.connection.CHUNK_SIZE == 64 * 1024
    assert "CHUNK_SIZE" in inspect.getsource(rstream.connection.Connection._read)
