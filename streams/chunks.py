"""Chunks as the broker delivers them, and their events read all at once.

A chunk's data is its entries back to back: a 4-byte size and a message, or
(top bit set) a sub-entry batch of several. Decoding message by message costs
about 4 us each (a Python call per layer: split, AMQP layout, JSON, checks).
A chunk of y_true or y_pred that nnmon wrote is instead read by one regular
expression, body included, found all at once (`findall`, no match objects):
1.4 us a y_true and 2.1 us a y_pred as events, 1.2 and 1.5 us as the ids and
values replay joins.

The fast path reads only what `codec.encode` writes and returns exactly what
`codec.decode` would (the tests compare the two); any other chunk (another
writer's layout, a malformed message, an integer where nnmon writes a float)
gets None, and is decoded message by message, with the usual rejects.

Pure: bytes in, events out.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from rstream.schema import SubEntryChunk

from streams import codec

_SIZE = struct.Struct(">I")
_LONG = struct.Struct(">q")


@dataclass(slots=True)
class Chunk:
    """One delivered chunk: `entries` entries holding `records` messages,
    the first at offset `first_offset`. The first `skip` messages lie before
    where the subscription started."""

    stream: str
    first_offset: int
    timestamp_ms: int  # when the broker stored the chunk (ms since the Unix epoch)
    entries: int
    records: int
    data: bytes
    skip: int = 0

    @property
    def last_offset(self) -> int:
        return self.first_offset + self.records - 1


def messages(chunk: Chunk) -> Iterator[tuple[int, bytes]]:
    """Each message after `skip`, with its offset."""
    data, position, offset = chunk.data, 0, chunk.first_offset
    for _ in range(chunk.entries):
        if data[position] & 0x80 == 0:
            size = _SIZE.unpack_from(data, position)[0]
            position += 4
            batch = [data[position:position + size]]
            position += size
        else:  # a sub-entry batch: rstream reads (and uncompresses) it
            batch, size = SubEntryChunk.read(data, data[position], position + 1)
            position += 1 + size
        for message in batch:
            if offset >= chunk.first_offset + chunk.skip:
                yield offset, message
            offset += 1


# An id as event ids are written (see codec), and a JSON number as orjson
# writes a float: with a fraction or an exponent. An integer is left to the
# slow path, where it reads as a float too, but -0 reads as 0.0, not -0.0.
_ID = rb"[A-Za-z0-9._:-]{1,128}"
_FLOAT = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)"


def _event_pattern(event_type: bytes, correlation: bytes, body: bytes) -> re.Pattern[bytes]:
    """One entry laid out as `amqp.encode_event` writes it (see
    `amqp._OWN_EVENT`), the body included; the message id and the body's id
    must be one."""
    application = b"\xa1\x0aevent_type" + bytes((0xA1, len(event_type))) + event_type + \
        b"\xa1\x0eschema_version\x54" + bytes((codec.SCHEMA_VERSION,))
    return re.compile(
        rb"(?P<size>[\x00-\x7f].{3})"  # a simple entry's size (a sub-entry batch has its top bit set)
        rb"\x00\x53\x73\xc0(?P<properties_size>.)\x0d"
        rb"\xa1(?P<id_size>.)(?P<id>" + _ID + rb")@@@@" + correlation +
        rb"\xa3\x10application/json@@\x83(?P<created>.{8})@@@"
        rb"\x00\x53\x74\xc1" + bytes((len(application) + 1,)) + rb"\x04" + re.escape(application) +
        rb"\x00\x53\x75\xa0(?P<body_size>.)" + body,
        re.DOTALL,
    )


_TRUTH = _event_pattern(b"y_true", b"@", rb'\{"id":"(?P=id)","y_true":(?P<value>' + _FLOAT + rb")\}")
# A prediction's correlation id is its features id, in the body too.
_PREDICTION = _event_pattern(
    b"y_pred", rb"\xa1(?P<features_id_size>.)(?P<features_id>" + _ID + rb")",
    rb'\{"id":"(?P=id)","features_id":"(?P=features_id)","y_pred":(?P<value>' + _FLOAT +
    rb'),"model_version":"(?P<model_version>[ !#-\[\]-~]*)"\}')  # printable ASCII, no escapes


def read_truths(chunk: Chunk) -> list[codec.TruthEvent] | None:
    """Every y_true of the chunk after `skip`, if each entry is one as nnmon
    writes it; else None."""
    entries = _truth_entries(chunk)
    if entries is None:
        return None
    values = [float(value) for *_, value in entries]
    if not _finite(values):
        return None
    return [codec.TruthEvent(event_id.decode(), y_true, _LONG.unpack(created)[0])
            for (_, _, _, event_id, created, _, _), y_true in zip(entries, values)]


def read_predictions(chunk: Chunk) -> list[codec.PredictionEvent] | None:
    """Every y_pred of the chunk after `skip`, if each entry is one as nnmon
    writes it; else None."""
    entries = _prediction_entries(chunk)
    if entries is None:
        return None
    values = [float(entry[8]) for entry in entries]
    if not _finite(values):
        return None
    return [codec.PredictionEvent(event_id.decode(), features_id.decode(), y_pred,
                                  model_version.decode(), _LONG.unpack(created)[0])
            for (_, _, _, event_id, _, features_id, created, _, _, model_version), y_pred
            in zip(entries, values)]


def truth_values(chunk: Chunk) -> tuple[list[str], list[float]] | None:
    """The ids and targets of `read_truths`, without making events (replay's
    join needs no more)."""
    entries = _truth_entries(chunk)
    if entries is None:
        return None
    values = [float(value) for *_, value in entries]
    return ([entry[3].decode() for entry in entries], values) if _finite(values) else None


def prediction_values(chunk: Chunk) -> tuple[list[str], list[float]] | None:
    """The features ids and predictions of `read_predictions`, without
    making events."""
    entries = _prediction_entries(chunk)
    if entries is None:
        return None
    values = [float(entry[8]) for entry in entries]
    return ([entry[5].decode() for entry in entries], values) if _finite(values) else None


def _truth_entries(chunk: Chunk) -> list[tuple[bytes, ...]] | None:
    """The groups of `_TRUTH` for each entry after `skip`, if the chunk is
    nothing but such entries; else None."""
    entries, total = _TRUTH.findall(chunk.data), 0
    for size, properties_size, id_size, event_id, _, body_size, value in entries:
        # The properties: 40 bytes, the id and a null correlation id. The
        # body: {"id":"…","y_true":…}.
        entry = _entry_size(size, properties_size, len(event_id) + 40, id_size, len(event_id),
                            body_size, len(event_id) + len(value) + 19)
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
        entry = _entry_size(size, properties_size, ids + 41, id_size, len(event_id),
                            body_size, ids + len(value) + len(model_version) + 55)
        if entry is None:
            return None
        total += entry
    return entries[chunk.skip:] if _whole(chunk, entries, total) else None


def _entry_size(
    size: bytes, properties_size: bytes, properties: int, id_size: bytes, id_length: int,
    body_size: bytes, body: int,
) -> int | None:
    """The entry's length (58 bytes of framing, its size field included, the
    properties list from its count on, and the body), if the size fields say
    what the pattern found; else None."""
    entry = 58 + properties + body
    if (_SIZE.unpack(size)[0] == entry - 4 and properties_size[0] == properties
            and id_size[0] == id_length and body_size[0] == body):
        return entry
    return None


def _whole(chunk: Chunk, entries: list[tuple[bytes, ...]], total: int) -> bool:
    """Whether `entries`, found apart from one another and `total` bytes long
    together, are all of the chunk: then they lie back to back from its
    first byte to its last."""
    return total == len(chunk.data) and len(entries) == chunk.entries


def _finite(values: list[float]) -> bool:
    """Whether every value is finite: at once, their sum is, unless one is
    not (or finite values overflow it: then one by one)."""
    return math.isfinite(sum(values)) or all(map(math.isfinite, values))
