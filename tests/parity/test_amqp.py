"""nnmon.streams.wire.amqp against rstream's own AMQP 1.0 codec: byte for byte on
writing, the same values on reading, and only AmqpError on garbage."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rstream import AMQPMessage, Header, Properties, amqp_decoder

from nnmon.streams.wire import amqp
from tests.damage import damage

texts = st.text(max_size=300)
ids = st.text(min_size=1, max_size=300)


def rstream_event(message_id: str, correlation_id: str | None, created_ms: int, event_type: str,
                  version: int, body: bytes) -> bytes:
    return bytes(AMQPMessage(
        body=body,
        properties=Properties(message_id=message_id, correlation_id=correlation_id,
                              content_type="application/json", creation_time=created_ms),
        application_properties={"event_type": event_type, "schema_version": version},
    ))


@given(ids, st.none() | ids, st.integers(-(2**63), 2**63 - 1), texts,
       st.integers(-128, 127), st.binary(min_size=1, max_size=700))
def test_events_are_written_byte_for_byte_as_rstream_writes_them(
    message_id: str, correlation_id: str | None, created_ms: int, event_type: str, version: int, body: bytes
) -> None:
    ours = amqp.encode_event(message_id, correlation_id, created_ms, event_type, version, body)
    assert ours == rstream_event(message_id, correlation_id, created_ms, event_type, version, body)


@given(ids, st.none() | ids, st.integers(0, 2**62), texts, st.binary(min_size=1, max_size=700))
def test_reading_gives_what_rstream_reads(
    message_id: str, correlation_id: str | None, created_ms: int, event_type: str, body: bytes
) -> None:
    data = amqp.encode_event(message_id, correlation_id, created_ms, event_type, 1, body)
    ours, theirs = amqp.decode(data), amqp_decoder(data)
    assert ours.body == theirs.body == body
    assert ours.properties["message_id"].encode() == theirs.properties.message_id
    assert ours.properties["creation_time"] == theirs.properties.creation_time == created_ms
    expected_correlation = None if correlation_id is None else correlation_id.encode()
    assert (ours.properties["correlation_id"] or "").encode() == (expected_correlation or b"")
    assert ours.application_properties == {"event_type": event_type, "schema_version": 1}


def test_messages_of_other_clients_are_read_whole() -> None:
    """Header, annotations, uuid ids, several value types: as other clients write them."""
    message_id = uuid.uuid4()
    data = bytes(AMQPMessage(
        body=b"payload",
        header=Header(durable=True, priority=4),
        message_annotations={b"x-opt-k": 7},
        properties=Properties(message_id=message_id, content_type="text/plain", creation_time=5),
        application_properties={"a": -70000, "b": 2**40, "c": 1.5, "d": True, "e": None, "f": b"\x00"},
    ))
    message = amqp.decode(data)
    assert message.body == b"payload"
    assert message.properties["message_id"] == message_id
    assert message.properties["content_type"] == "text/plain"
    assert message.application_properties == {"a": -70000, "b": 2**40, "c": 1.5, "d": True, "e": None,
                                               "f": b"\x00"}


def test_several_data_sections_are_joined() -> None:
    one = amqp.encode_event("i", None, 1, "y_true", 1, b"ab")
    data = one + b"\x00\x53\x75\xa0\x02cd"
    assert amqp.decode(data).body == b"abcd"


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\x01\x02", b"\x00\x53\x75\xa0\x05ab",
                                     b"\x00\x53\x99\x40", b"\x00\x53\x73\xc0\x05\x02\x40"])
def test_garbage_is_an_amqp_error(garbage: bytes) -> None:
    with pytest.raises(amqp.AmqpError):
        amqp.decode(garbage)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    try:
        amqp.decode(data)
    except amqp.AmqpError:
        pass


event_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True)
event_types = st.from_regex(r"[a-z_]{1,40}", fullmatch=True)


def assert_rstream_reads(data: bytes, fields: amqp.EventFields) -> None:
    theirs = amqp_decoder(data)
    assert theirs.properties.message_id == fields.message_id.encode()
    assert theirs.properties.correlation_id == (
        None if fields.correlation_id is None else fields.correlation_id.encode())
    assert theirs.properties.creation_time == fields.created_ms
    assert theirs.application_properties == {b"event_type": fields.event_type.encode(),
                                             b"schema_version": fields.schema_version}
    assert theirs.body == fields.body


@given(event_ids, st.none() | event_ids, st.integers(0, 2**62), event_types, st.integers(-128, 127),
       st.binary(max_size=700))
def test_the_fast_path_reads_events_whole(
    message_id: str, correlation_id: str | None, created_ms: int, event_type: str, version: int, body: bytes
) -> None:
    data = amqp.encode_event(message_id, correlation_id, created_ms, event_type, version, body)
    fields = amqp.read_event(data)
    assert fields == amqp.EventFields(message_id, correlation_id, created_ms, event_type, version, body)
    assert_rstream_reads(data, fields)


@given(event_ids, st.none() | event_ids, event_types, st.binary(max_size=300), st.data())
def test_the_fast_path_never_misreads_a_damaged_event(
    message_id: str, correlation_id: str | None, event_type: str, body: bytes, data: st.DataObject
) -> None:
    """A byte changed, inserted or removed anywhere: the fast path either
    declines the message or reads exactly what rstream's decoder reads."""
    damaged, _ = damage(amqp.encode_event(message_id, correlation_id, 1_700_000_000_000, event_type, 1, body),
                        data)
    fields = amqp.read_event(damaged)
    if fields is not None:
        assert_rstream_reads(damaged, fields)


@pytest.mark.parametrize("correlation_id", [None, "def"])
def test_the_fast_path_never_misreads_any_byte_changed(correlation_id: str | None) -> None:
    """Every byte of an event, changed to each of a few values: the fast path
    declines the message, or reads exactly what rstream's decoder reads."""
    good = amqp.encode_event("abc", correlation_id, 5, "y_true", 1, b"{}")
    assert amqp.read_event(good) is not None
    declined = 0
    for at in range(len(good)):
        for byte in {good[at] + 1, good[at] - 1, 0x00, 0x40, 0xFF} - {good[at], -1, 256}:
            damaged = bytes(good[:at]) + bytes((byte,)) + good[at + 1:]
            fields = amqp.read_event(damaged)
            if fields is None:
                declined += 1
            else:
                assert_rstream_reads(damaged, fields)
    assert declined > 4 * len(good)  # most damage is declined, not read
    assert amqp.read_event(good + b"x") is None  # more than the body's size
