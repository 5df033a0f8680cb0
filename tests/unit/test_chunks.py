"""nnmon.streams.events.chunks: a chunk's messages, and its events read all at once,
against decoding message by message (`codec.decode`)."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rstream import AMQPMessage, Properties

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.shell.intake import Intake
from nnmon.streams.events import chunks, codec
from nnmon.streams.wire.chunk import Chunk, messages
from tests.damage import damage

event_ids = st.text("abcdefXYZ0123456789._:-", min_size=1, max_size=128)
values = st.floats(allow_nan=False, allow_infinity=False)
created = st.integers(0, 2**62)
truths = st.builds(codec.TruthEvent, event_ids, values, created)
predictions = st.builds(codec.PredictionEvent, event_ids, event_ids, values,
                        st.text(max_size=20) | st.sampled_from(["linear-1", "v 2", ""]), created)


def entry(message: bytes) -> bytes:
    return struct.pack(">I", len(message)) + message


def chunk_of(messages: Sequence[bytes], skip: int = 0, first_offset: int = 100) -> Chunk:
    return Chunk("s", first_offset, 1_700_000_000_000, len(messages), len(messages),
                        b"".join(entry(m) for m in messages), skip)


def one_by_one(chunk: Chunk) -> list[codec.Event]:
    return [codec.decode(message) for _, message in messages(chunk)]


def join_values(events: Sequence[codec.Event] | None) -> tuple[list[str], list[float]] | None:
    """What `truth_values` or `prediction_values` gives for these events:
    the join's key and value of each."""
    if events is None:
        return None
    keys = [e.features_id if isinstance(e, codec.PredictionEvent) else e.id for e in events]
    return keys, [e.y_pred if isinstance(e, codec.PredictionEvent) else e.y_true for e in events]


@given(st.lists(truths, min_size=1, max_size=30), st.data())
def test_truths_read_at_once_are_what_decoding_one_by_one_gives(
    events: list[codec.TruthEvent], data: st.DataObject
) -> None:
    chunk = chunk_of([codec.encode(e).data for e in events], skip=data.draw(st.integers(0, len(events))))
    assert chunks.read_truths(chunk) == one_by_one(chunk) == events[chunk.skip:]
    assert chunks.truth_values(chunk) == join_values(events[chunk.skip:])


@given(st.lists(predictions, min_size=1, max_size=30), st.data())
def test_predictions_read_at_once_are_what_decoding_one_by_one_gives(
    events: list[codec.PredictionEvent], data: st.DataObject
) -> None:
    chunk = chunk_of([codec.encode(e).data for e in events], skip=data.draw(st.integers(0, len(events))))
    fast = chunks.read_predictions(chunk)
    assert one_by_one(chunk) == events[chunk.skip:]
    # Only a model version that JSON writes as it is (printable ASCII, no
    # quote or backslash) is left to decoding one by one.
    plain = all(e.model_version.isascii() and e.model_version.isprintable()
                and not set(e.model_version) & {'"', "\\"} for e in events)
    assert fast == (events[chunk.skip:] if plain else None)
    assert chunks.prediction_values(chunk) == join_values(fast)


DIABETES = diabetes()
data_set_rows = st.builds(lambda row: DIABETES.row_features(row), st.integers(0, len(DIABETES.target) - 1))
feature_sets = data_set_rows | st.dictionaries(st.text(max_size=12), values | st.integers(-5, 5), max_size=12)
features_events = st.builds(codec.FeaturesEvent, event_ids, st.integers(0, 10**6), feature_sets, created)


@given(st.lists(st.builds(codec.FeaturesEvent, event_ids, st.integers(0, 441), data_set_rows, created),
                min_size=1, max_size=30), st.data())
def test_features_of_the_data_set_read_at_once_are_what_decoding_one_by_one_gives(
    events: list[codec.FeaturesEvent], data: st.DataObject
) -> None:
    chunk = chunk_of([codec.encode(e).data for e in events], skip=data.draw(st.integers(0, len(events))))
    assert chunks.read_features(chunk) == one_by_one(chunk) == events[chunk.skip:]


@given(st.lists(features_events, min_size=1, max_size=10), st.data())
def test_any_features_are_declined_or_read_as_one_by_one(
    events: list[codec.FeaturesEvent], data: st.DataObject
) -> None:
    """Few features (a body of 255 bytes or less), integers, names JSON
    escapes or none at all: declined, or read as decoding one by one."""
    chunk = chunk_of([codec.encode(e).data for e in events], skip=data.draw(st.integers(0, len(events))))
    fast = chunks.read_features(chunk)
    assert fast is None or fast == one_by_one(chunk)
    assert fast is None or all(type(value) is float for e in fast for value in e.features.values())


def test_the_offsets_of_messages_count_from_the_chunk_and_skip() -> None:
    chunk = chunk_of([b"a", b"bc", b"", b"def"], skip=1, first_offset=7)
    assert list(messages(chunk)) == [(8, b"bc"), (9, b""), (10, b"def")]
    assert chunk.last_offset == 10


def foreign_truth() -> bytes:
    """A y_true as another client may write it: same fields, rstream's
    encoder, an integer target and a header section."""
    return bytes(AMQPMessage(
        body=b'{"id":"x1","y_true":96}',
        properties=Properties(message_id="x1", content_type="application/json", creation_time=5),
        application_properties={"event_type": "y_true", "schema_version": 1},
    ))


@pytest.mark.parametrize("odd_one", [
    foreign_truth(),
    codec.encode(codec.TruthEvent("x1", 96.0, 5)).data.replace(b"96.0", b"96"),  # an integer
    codec.encode(codec.TruthEvent("x1", 96.0, 5)).data.replace(b'"x1"', b'"x2"'),  # ids that differ
    codec.encode(codec.TruthEvent("x1", 960.0, 5)).data.replace(b"960.0", b"9e999"),  # not finite
    codec.encode(codec.PredictionEvent("p", "x1", 96.0, "v", 5)).data,
    b"not an event",
])
def test_a_chunk_with_any_other_message_is_left_to_decoding_one_by_one(odd_one: bytes) -> None:
    ours = [codec.encode(codec.TruthEvent(f"t{i}", 1.5, 5)).data for i in range(3)]
    chunk = chunk_of([*ours[:2], odd_one, ours[2]])
    assert chunks.read_truths(chunk) is None
    assert chunks.read_truths(chunk_of([*ours[:2], ours[2]])) is not None


@pytest.mark.parametrize("read, event", [
    (chunks.read_truths, codec.TruthEvent("t", 1.5, 5)),
    (chunks.read_features, codec.FeaturesEvent("f", 3, DIABETES.row_features(3), 5)),
])
def test_bytes_after_the_last_entry_are_not_left_unread(
    read: Callable[[Chunk], list[codec.Event] | None], event: codec.Event
) -> None:
    chunk = chunk_of([codec.encode(event).data] * 2)
    assert read(chunk) is not None
    chunk.data += b"\x00"
    assert read(chunk) is None


@pytest.mark.parametrize("read, read_values, event", [
    (chunks.read_truths, chunks.truth_values, codec.TruthEvent("abc", 151.25, 5)),
    (chunks.read_predictions, chunks.prediction_values,
     codec.PredictionEvent("abc", "def", 7e-05, "linear-1", 5)),
    (chunks.read_features, None, codec.FeaturesEvent("abc", 17, DIABETES.row_features(17), 5)),
])
def test_every_byte_changed_is_declined_or_read_as_one_by_one(
    read: Callable[[Chunk], list[codec.Event] | None],
    read_values: Callable[[Chunk], tuple[list[str], list[float]] | None] | None, event: codec.Event
) -> None:
    """Every byte of a chunk of two events, changed to each of a few values:
    the chunk is declined, or read exactly as decoding one by one reads it."""
    good = chunk_of([codec.encode(event).data] * 2)
    assert read(good) == [event, event]
    declined = 0
    for at in range(len(good.data)):
        for byte in {good.data[at] + 1, good.data[at] - 1, 0x00, 0x30, 0x40, 0xFF} - {good.data[at], -1, 256}:
            damaged = chunk_of([], first_offset=good.first_offset)
            damaged.entries = damaged.records = 2
            damaged.data = good.data[:at] + bytes((byte,)) + good.data[at + 1:]
            fast = read(damaged)
            if read_values is not None:
                assert read_values(damaged) == join_values(fast)
            if fast is None:
                declined += 1
            else:
                assert fast == one_by_one(damaged)
    assert declined > 4 * len(good.data)


@given(st.lists(truths, min_size=1, max_size=5), st.data())
def test_a_damaged_chunk_is_declined_or_read_as_one_by_one(
    events: list[codec.TruthEvent], data: st.DataObject
) -> None:
    """A byte changed, inserted or removed anywhere, or an entry count that
    is off: declined, or read exactly as one by one."""
    chunk = chunk_of([codec.encode(e).data for e in events])
    if data.draw(st.booleans()):
        chunk.data, kind = damage(chunk.data, data)
    else:
        kind = "count"
        chunk.entries = chunk.records = chunk.entries + data.draw(st.sampled_from([-1, 1]))
    fast = chunks.read_truths(chunk)
    assert chunks.truth_values(chunk) == join_values(fast)
    if fast is not None:
        assert fast == one_by_one(chunk)
    if kind in ("insert", "remove", "count"):
        assert fast is None  # sizes no longer add up


def test_a_malformed_message_in_a_chunk_is_rejected_and_the_rest_read() -> None:
    intake = Intake(logging.getLogger("test"), "test", keep_rejects=True)
    good = [codec.TruthEvent(f"t{i}", 1.5, 5) for i in range(2)]
    chunk = chunk_of([codec.encode(good[0]).data, b"garbage", codec.encode(good[1]).data])
    assert chunks.read_truths(chunk) is None
    assert intake.decode_messages(chunk, codec.TruthEvent) == [(100, good[0]), (102, good[1])]
    assert intake.rejected == 1
    assert intake._unpublished[0].source_offset == 101 and intake._unpublished[0].original == b"garbage"
