"""A chunk's events read all at once.

Decoding a chunk message by message (`wire.chunk.messages`) costs
about 4 us each (a Python call per layer: split, AMQP layout, JSON, checks).
A chunk of y_true or y_pred that nnmon wrote is instead read by one regular
expression, body included, found all at once (`findall`, no match objects):
1.4 us a y_true and 2.1 us a y_pred as events, 1.2 and 1.5 us as the ids and
values replay joins. A features event (5.1 us one by one) is read up to its
features by one per entry, and its features by orjson, once per distinct
row: 2.1 us.

The fast path reads only what `codec.encode` writes and returns exactly what
`codec.decode` would (the tests compare the two); any other chunk (another
writer's layout, a malformed message, an integer where nnmon writes a float)
gets None, and is decoded message by message, with the usual rejects.

Pure: bytes in, events out.
"""

from __future__ import annotations

import functools
import math
import re
import struct

import orjson

from nnmon.streams.events import codec
from nnmon.streams.wire import amqp
from nnmon.streams.wire.chunk import Chunk

_SIZE = struct.Struct(">I")
_LONG = struct.Struct(">q")


# An id as event ids are written (codec.ID_PATTERN), and a JSON number as orjson
# writes a float: with a fraction or an exponent. An integer is left to the
# slow path, where it reads as a float too, but -0 reads as 0.0, not -0.0.
_ID = codec.ID_PATTERN.pattern.encode()
_FLOAT = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)"


def _framing(event_type: str, large_body: bool = False) -> int:
    """The bytes of an entry that are neither its properties (from their count
    on) nor its body: its size, the sections' heads and the application
    properties (as `amqp.encode_event` writes them: measured on one)."""
    body = b" " * (256 if large_body else 0)
    message = amqp.encode_event("", None, 0, event_type, codec.SCHEMA_VERSION, body)
    return 4 + len(message) - amqp.properties_size("", None) - len(body)


# An event's properties from their count on, but for its ids.
_PROPERTIES = amqp.properties_size("", None)
_PROPERTIES_WITH_CORRELATION = amqp.properties_size("", "")


def _event_pattern(
    event_type: str, correlation: bytes, body: bytes, large_body: bool = False
) -> re.Pattern[bytes]:
    """One entry: its size, then the message laid out as `amqp.message_head`
    describes it, the application properties of `event_type` as they are
    written, and the body; the message id and the body's id must be one."""
    application_head, application = amqp.application_section(event_type, codec.SCHEMA_VERSION)
    return re.compile(
        rb"(?P<size>[\x00-\x7f].{3})"  # a simple entry's size (a sub-entry batch has its top bit set)
        + amqp.message_head(
            re.escape,
            rb"\xc0(?P<properties_size>.)" + re.escape(bytes((amqp.PROPERTY_COUNT,))),
            amqp.properties_fields(re.escape, rb"\xa1(?P<id_size>.)(?P<id>" + _ID + rb")", correlation,
                                   rb"(?P<created>.{8})"),
            re.escape(application_head), re.escape(application),
            rb"\xb0(?P<body_size>.{4})" if large_body else rb"\xa0(?P<body_size>.)",
        ) + body,
        re.DOTALL,
    )


_TRUTH = _event_pattern("y_true", b"@", rb'\{"id":"(?P=id)","y_true":(?P<value>' + _FLOAT + rb")\}")
_TRUTH_FRAMING = _framing("y_true")
# Where `findall` puts these groups in an entry's tuple.
_TRUTH_ID, _TRUTH_VALUE = _TRUTH.groupindex["id"] - 1, _TRUTH.groupindex["value"] - 1
# A prediction's correlation id is its features id, in the body too.
_PREDICTION = _event_pattern(
    "y_pred", rb"\xa1(?P<features_id_size>.)(?P<features_id>" + _ID + rb")",
    rb'\{"id":"(?P=id)","features_id":"(?P=features_id)","y_pred":(?P<value>' + _FLOAT +
    rb'),"model_version":"(?P<model_version>[ !#-\[\]-~]*)"\}')  # printable ASCII, no escapes
_PREDICTION_FRAMING = _framing("y_pred")
_FEATURES_ID, _PREDICTION_VALUE = (_PREDICTION.groupindex["features_id"] - 1,
                                   _PREDICTION.groupindex["value"] - 1)
# A features event up to its features (a body of more than 255 bytes, as
# the data set's rows have): the features themselves, the rest of the body
# but its closing brace, are left to orjson.
_FEATURES_HEAD = _event_pattern(
    "features", b"@", rb'\{"id":"(?P=id)","row":(?P<row>0|[1-9][0-9]{0,17}),"features":', large_body=True)
_FEATURES_FRAMING = _framing("features", large_body=True)


def read_truths(chunk: Chunk) -> list[codec.TruthEvent] | None:
    """Every y_true of the chunk after `skip`, if each entry is one as nnmon
    writes it; else None."""
    entries = _truth_entries(chunk)
    if entries is None:
        return None
    values = _finite_values(entries, _TRUTH_VALUE)
    if values is None:
        return None
    return [codec.TruthEvent(event_id.decode(), y_true, _LONG.unpack(created)[0])
            for (_, _, _, event_id, created, _, _), y_true in zip(entries, values)]


def read_predictions(chunk: Chunk) -> list[codec.PredictionEvent] | None:
    """Every y_pred of the chunk after `skip`, if each entry is one as nnmon
    writes it; else None."""
    entries = _prediction_entries(chunk)
    if entries is None:
        return None
    values = _finite_values(entries, _PREDICTION_VALUE)
    if values is None:
        return None
    return [codec.PredictionEvent(event_id.decode(), features_id.decode(), y_pred,
                                  model_version.decode(), _LONG.unpack(created)[0])
            for (_, _, _, event_id, _, features_id, created, _, _, model_version), y_pred
            in zip(entries, values)]


def read_features(chunk: Chunk) -> list[codec.FeaturesEvent] | None:
    """Every features event of the chunk after `skip`, if each entry is one
    as nnmon writes it (with a body of more than 255 bytes); else None.
    Events with the same features share one dict: do not change it."""
    data, position, events, match = chunk.data, 0, [], _FEATURES_HEAD.match
    for _ in range(chunk.entries):
        head = match(data, position)
        if head is None:
            return None
        size, properties_size, id_size, event_id, created, body_size, row = head.groups()
        # The entry ends where its size says; the features object, before the
        # body's closing brace, fills the rest.
        end = position + 4 + _SIZE.unpack(size)[0]
        features = data[head.end():end - 1]
        # The properties as a y_true's; the body: {"id":"…","row":…,"features":…}.
        entry = _entry_size(size, properties_size, _PROPERTIES + len(event_id), id_size, len(event_id),
                            _SIZE.unpack(body_size)[0], len(event_id) + len(row) + len(features) + 28,
                            _FEATURES_FRAMING)
        if entry != end - position or data[end - 1:end] != b"}":
            return None
        checked = _checked_features(features)
        if checked is None:
            return None
        events.append(codec.FeaturesEvent(event_id.decode(), int(row), checked, _LONG.unpack(created)[0]))
        position = end
    return events[chunk.skip:] if position == len(data) else None


@functools.lru_cache(maxsize=4096)
def _checked_features(text: bytes) -> dict[str, float] | None:
    """A features object as `codec.decode` reads it, or None where it would
    not. Cached: `features` sends the data set's few hundred rows again and
    again (0.3 us against 2 us to read and check)."""
    try:
        return codec.checked_features(orjson.loads(text))
    except (orjson.JSONDecodeError, codec.MalformedEvent):
        return None


def truth_values(chunk: Chunk) -> tuple[list[str], list[float]] | None:
    """The ids and targets of `read_truths`, without making events (replay's
    join needs no more)."""
    entries = _truth_entries(chunk)
    if entries is None:
        return None
    values = _finite_values(entries, _TRUTH_VALUE)
    return None if values is None else ([entry[_TRUTH_ID].decode() for entry in entries], values)


def prediction_values(chunk: Chunk) -> tuple[list[str], list[float]] | None:
    """The features ids and predictions of `read_predictions`, without
    making events."""
    entries = _prediction_entries(chunk)
    if entries is None:
        return None
    values = _finite_values(entries, _PREDICTION_VALUE)
    return None if values is None else ([entry[_FEATURES_ID].decode() for entry in entries], values)


def _truth_entries(chunk: Chunk) -> list[tuple[bytes, ...]] | None:
    """The groups of `_TRUTH` for each entry after `skip`, if the chunk is
    nothing but such entries; else None."""
    entries, total = _TRUTH.findall(chunk.data), 0
    for size, properties_size, id_size, event_id, _, body_size, value in entries:
        # The properties: the id and a null correlation id. The body:
        # {"id":"…","y_true":…}.
        entry = _entry_size(size, properties_size, _PROPERTIES + len(event_id), id_size, len(event_id),
                            body_size[0], len(event_id) + len(value) + 19, _TRUTH_FRAMING)
        if entry is None:
            return None
        total += entry
    return entries[chunk.skip:] if _whole(chunk, entries, total) else None


def _prediction_entries(chunk: Chunk) -> list[tuple[bytes, ...]] | None:
    """The groups of `_PREDICTION` for each entry after `skip`, if the chunk
    is nothing but such entries; else None."""
    entries, total = _PREDICTION.findall(chunk.data), 0
    for size, properties_size, id_size, event_id, features_id_size, features_id, _, body_size, value, \
            model_version in entries:
        ids = len(event_id) + len(features_id)
        if features_id_size[0] != len(features_id):
            return None
        # The body: {"id":"…","features_id":"…","y_pred":…,"model_version":"…"}.
        entry = _entry_size(size, properties_size, _PROPERTIES_WITH_CORRELATION + ids, id_size, len(event_id),
                            body_size[0], ids + len(value) + len(model_version) + 55, _PREDICTION_FRAMING)
        if entry is None:
            return None
        total += entry
    return entries[chunk.skip:] if _whole(chunk, entries, total) else None


def _entry_size(
    size: bytes, properties_size: bytes, properties: int, id_size: bytes, id_length: int,
    body_size: int, body: int, framing: int,
) -> int | None:
    """The entry's length (its framing, the properties list from its count
    on, and the body), if the size fields say what the pattern found; else
    None."""
    entry = framing + properties + body
    if (_SIZE.unpack(size)[0] == entry - 4 and properties_size[0] == properties
            and id_size[0] == id_length and body_size == body):
        return entry
    return None


def _whole(chunk: Chunk, entries: list[tuple[bytes, ...]], total: int) -> bool:
    """Whether `entries`, found apart from one another and `total` bytes long
    together, are all of the chunk: then they lie back to back from its
    first byte to its last."""
    return total == len(chunk.data) and len(entries) == chunk.entries


def _finite_values(entries: list[tuple[bytes, ...]], index: int) -> list[float] | None:
    """The number in group `index` of each entry, if every one is finite:
    at once, their sum is, unless one is not (or finite values overflow it:
    then one by one)."""
    values = [float(entry[index]) for entry in entries]
    return values if math.isfinite(sum(values)) or all(map(math.isfinite, values)) else None
