"""Frames decoded with struct are the frames rstream's decoder makes, and
what does not read cleanly gets rstream's own error; frames read whole from
the connection are the frames rstream reads (pure: no socket)."""

from __future__ import annotations

import asyncio
import zlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rstream import schema
from rstream.client import BaseClient
from rstream.connection import Connection, ConnectionClosed
from rstream.encoding import decode_frame as rstream_decode
from rstream.encoding import encode_frame

from nnmon.streams.client.frames import decode_frame
from nnmon.streams.client.rstream_private import read_whole_frames

UINT32 = st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 2**64 - 1)


def body(frame: schema.Frame) -> bytes:
    """The frame as the connection hands it over: without its size."""
    return encode_frame(frame)[4:]


def outcome(decode: object, data: bytes) -> object:
    try:
        return decode(data)  # type: ignore[operator]
    except ValueError as error:
        return type(error)


@given(st.integers(0, 255), st.lists(UINT64, max_size=300))
@example(255, [2**64 - 1, 0])
def test_a_confirm_is_what_rstream_reads(publisher_id: int, ids: list[int]) -> None:
    data = body(schema.PublishConfirm(publisher_id, ids))
    decoded = decode_frame(data)
    assert type(decoded) is schema.PublishConfirm
    assert decoded == rstream_decode(data)


@given(st.binary(max_size=2000), st.integers(0, 255), st.integers(0, 2**16 - 1), UINT32,
       st.integers(-(2**63), 2**63 - 1), UINT64, UINT64, UINT32, UINT32)
# Every field's top bit set:
@example(b"\xff", 255, 2**16 - 1, 2**32 - 1, -(2**63), 2**64 - 1, 2**64 - 1, 2**32 - 1, 2**32 - 1)
def test_a_delivered_chunk_is_what_rstream_reads(
    data: bytes, subscription: int, entries: int, records: int, timestamp: int, epoch: int, first: int,
    trailer: int, reserved: int,
) -> None:
    frame = body(schema.Deliver(subscription, 80, 0, entries, records, timestamp, epoch, first,
                                zlib.crc32(data), len(data), trailer, reserved, data))
    decoded = decode_frame(frame)
    assert type(decoded) is schema.Deliver
    assert decoded == rstream_decode(frame)


def test_a_damaged_chunk_gets_rstreams_error() -> None:
    good = body(schema.Deliver(1, 80, 0, 1, 1, 0, 0, 0, zlib.crc32(b"chunk"), 5, 0, 0, b"chunk"))
    bad_checksum = good[:-1] + b"K"
    with pytest.raises(ValueError, match="Could not decode"):
        decode_frame(bad_checksum)
    assert outcome(decode_frame, bad_checksum) is outcome(rstream_decode, bad_checksum)


@given(st.integers(0, 255), st.integers(0, 8), st.binary(max_size=80))
def test_a_confirm_of_another_length_reads_as_rstream_reads_it(
    publisher_id: int, count: int, rest: bytes
) -> None:
    # (A small count: rstream reads as many ids as it says, past the end too.)
    frame = b"\x00\x03\x00\x01" + bytes([publisher_id]) + count.to_bytes(4, "big") + rest
    assert outcome(decode_frame, frame) == outcome(rstream_decode, frame)


@given(st.binary(max_size=80))
def test_any_delivered_bytes_read_as_rstream_reads_them(rest: bytes) -> None:
    frame = b"\x00\x08\x00\x01" + rest
    assert outcome(decode_frame, frame) == outcome(rstream_decode, frame)


def test_other_frames_are_left_to_rstream() -> None:
    frame = body(schema.Heartbeat())
    assert decode_frame(frame) == rstream_decode(frame)
    credit = body(schema.CreditResponse(response_code=6, subscription_id=3))
    assert decode_frame(credit) == rstream_decode(credit)


def deliver(data: bytes) -> schema.Deliver:
    return schema.Deliver(1, 80, 0, 1, 1, 0, 0, 7, zlib.crc32(data), len(data), 0, 0, data)


frames = st.lists(st.one_of(
    st.builds(deliver, st.binary(max_size=3000)),
    st.builds(schema.PublishConfirm, st.integers(0, 255), st.lists(UINT64, max_size=20)),
    st.just(schema.Heartbeat()),
), min_size=1, max_size=8)


@given(frames, st.data())
def test_frames_read_whole_are_the_frames_rstream_reads(
    sent: list[schema.Frame], data: st.DataObject
) -> None:
    """rstream reads the first frames (and what it reads ahead stays in its
    buffer); the rest are read whole, as the bytes arrive in pieces; then
    the connection's end is rstream's ConnectionClosed."""
    stream = b"".join(encode_frame(frame) for frame in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    by_rstream = data.draw(st.integers(0, len(sent)))

    async def scenario() -> list[schema.Frame]:
        connection = Connection("127.0.0.1", 0)
        connection._reader = reader = asyncio.StreamReader()
        client = BaseClient("127.0.0.1", 0, frame_max=1 << 20, heartbeat=0)
        client._conn = connection

        async def arrive() -> None:
            for piece in pieces:
                reader.feed_data(piece)
                await asyncio.sleep(0)
            reader.feed_eof()

        arriving = asyncio.ensure_future(arrive())
        read = [await connection.read_frame() for _ in range(by_rstream)]
        read_whole_frames(client)
        read += [await connection.read_frame() for _ in range(len(sent) - by_rstream)]
        with pytest.raises(ConnectionClosed):
            await connection.read_frame()
        await arriving
        return read

    assert asyncio.run(scenario()) == [rstream_decode(encode_frame(frame)[4:]) for frame in sent]
