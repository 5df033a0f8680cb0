"""A small, fast AMQP 1.0 message codec for the shape of nnmon's events.

rstream's general AMQP codec (`rstream.AMQPMessage`, `rstream.amqp_decoder`)
was measured as the first wall of the pipeline: about 85k encodes and 210k
decodes a second, most of it spent building intermediate objects. Events are
always the same shape (see `encode_event`), so they are written directly, byte
for byte what rstream writes for the same message (the tests compare the two),
and any RabbitMQ client reads them as usual.

Reading accepts any AMQP 1.0 message: the sections and the value types of the
specification are parsed here; only arrays and the rare types no nnmon field
uses are handed to rstream's decoder instead.

Pure: bytes in, bytes or values out.
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rstream import amqp_decoder

_UBYTE = struct.Struct(">B")
_UINT = struct.Struct(">I")
LONG = struct.Struct(">q")  # an AMQP long (creation_time)
_SIGNED_BYTE = struct.Struct(">b")

# Section descriptors (0x00000000:0x000000NN) and their names.
_SECTIONS = {
    0x70: "header",
    0x71: "delivery_annotations",
    0x72: "message_annotations",
    0x73: "properties",
    0x74: "application_properties",
    0x75: "data",
    0x76: "sequence",
    0x77: "value",
    0x78: "footer",
}
_PROPERTY_FIELDS = (
    "message_id", "user_id", "to", "subject", "reply_to", "correlation_id", "content_type",
    "content_encoding", "absolute_expiry_time", "creation_time", "group_id", "group_sequence",
    "reply_to_group_id",
)
_CONTENT_TYPE_JSON = b"\xa3\x10application/json"
_NULL = b"\x40"


class AmqpError(ValueError):
    """Bytes that are not an AMQP 1.0 message."""


def _variable(small: int, large: int, data: bytes) -> bytes:
    if len(data) <= 255:
        return bytes((small, len(data))) + data
    return bytes((large,)) + _UINT.pack(len(data)) + data


def _string(text: str) -> bytes:
    return _variable(0xA1, 0xB1, text.encode())


def _compound_head(small: int, large: int, count: int, encoded: bytes) -> bytes:
    """A list's or map's type, size and count, before its `encoded` items."""
    if count <= 255 and len(encoded) < 255:
        return bytes((small, len(encoded) + 1, count))
    return bytes((large,)) + _UINT.pack(len(encoded) + 4) + _UINT.pack(count)


# The one description of an event message as nnmon writes it: properties (a
# list of 13: message_id, four nulls, correlation_id, content_type, two
# nulls, creation_time, three nulls), application properties (a map of 4:
# event_type, schema_version) and one data section, the body. The three
# functions lay out the constant bytes around the fields. Given the fields
# encoded (and `literal` as is) they write a message (`encode_event`);
# given regular expressions (and `re.escape`) they make the patterns that
# read one: `read_event` here, and the chunk readers of
# `nnmon.streams.events.chunks`.
Literal = Callable[[bytes], bytes]
PROPERTY_COUNT = 13
APPLICATION_COUNT = 4
_PROPERTIES, _APPLICATION, _DATA = b"\x00\x53\x73", b"\x00\x53\x74", b"\x00\x53\x75"  # section descriptors


def properties_fields(literal: Literal, message_id: bytes, correlation_id: bytes, created_ms: bytes) -> bytes:
    """The properties' items."""
    return b"".join((message_id, literal(_NULL * 4), correlation_id,  # user_id, to, subject, reply_to
                     literal(_CONTENT_TYPE_JSON + _NULL * 2 + b"\x83"),  # content_encoding, absolute_expiry
                     created_ms, literal(_NULL * 3)))  # group_id, group_sequence, reply_to_group_id


def application_fields(literal: Literal, event_type: bytes, schema_version: bytes) -> bytes:
    """The application properties' items (the version a small int: 0x54)."""
    return b"".join((literal(b"\xa1\x0aevent_type"), event_type, literal(b"\xa1\x0eschema_version\x54"),
                     schema_version))


def message_head(
    literal: Literal, properties_head: bytes, properties: bytes, application_head: bytes, application: bytes,
    data_head: bytes,
) -> bytes:
    """The whole message up to its body: the three sections, each after its
    descriptor; `data_head` is the data section's type and size."""
    return b"".join((literal(_PROPERTIES), properties_head, properties, literal(_APPLICATION),
                     application_head, application, literal(_DATA), data_head))


def _as_is(data: bytes) -> bytes:
    return data


def encode_event(
    message_id: str, correlation_id: str | None, created_ms: int, event_type: str,
    schema_version: int, body: bytes,
) -> bytes:
    """An event message (see `message_head`), trailing empty property fields
    included: exactly what rstream encodes for the same `AMQPMessage`."""
    if not -128 <= schema_version <= 127:
        raise ValueError("schema_version must fit a small AMQP int")
    properties = _properties(message_id, correlation_id, created_ms)
    return message_head(_as_is, _compound_head(0xC0, 0xD0, PROPERTY_COUNT, properties), properties,
                        *application_section(event_type, schema_version),
                        data_head(len(body))) + body


def properties_size(message_id: str, correlation_id: str | None) -> int:
    """What an event's properties take from their count on (what their size
    byte says), for these ids."""
    return 1 + len(_properties(message_id, correlation_id, 0))


def _properties(message_id: str, correlation_id: str | None, created_ms: int) -> bytes:
    """An event's properties' items, encoded."""
    return properties_fields(_as_is, _string(message_id),
                             _NULL if correlation_id is None else _string(correlation_id),
                             LONG.pack(created_ms))


def application_section(event_type: str, schema_version: int) -> tuple[bytes, bytes]:
    """The head and the items of an event's application properties."""
    application = application_fields(_as_is, _string(event_type), bytes((schema_version & 0xFF,)))
    return _compound_head(0xC1, 0xD1, APPLICATION_COUNT, application), application


def data_head(size: int) -> bytes:
    """A data section's type and size, for a body of `size` bytes."""
    return b"\xa0" + bytes((size,)) if size <= 255 else b"\xb0" + _UINT.pack(size)


def data_section_header(size: int) -> bytes:
    """The start of a data section of `size` bytes: descriptor, type, size."""
    return _DATA + data_head(size)


@dataclass
class Message:
    """The parts of a message nnmon reads. Strings are `str`; binary is `bytes`."""

    properties: dict[str, Any] = field(default_factory=dict)
    application_properties: Any = None
    # The data sections, joined; or an amqp-value that is a string (as UTF-8)
    # or binary, what many AMQP 1.0 clients send for a text or bytes body.
    body: bytes | None = None


def decode(data: bytes) -> Message:
    """Read any AMQP 1.0 message; raises `AmqpError` for anything else."""
    try:
        own = read_event(data)
        if own is not None:
            return Message(
                {"message_id": own.message_id, "correlation_id": own.correlation_id,
                 "content_type": "application/json", "creation_time": own.created_ms},
                {"event_type": own.event_type, "schema_version": own.schema_version},
                own.body,
            )
        return _Reader(data).message()
    except _Unsupported:
        return _from_rstream(data)
    except (IndexError, struct.error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise AmqpError(f"not an AMQP 1.0 message ({type(error).__name__})") from None


class EventFields(NamedTuple):
    """An event message's fields, as `encode_event` writes them."""

    message_id: str
    correlation_id: str | None
    created_ms: int
    event_type: str
    schema_version: int
    body: bytes


# An event id and an event type as patterns: the id in the event-id
# alphabet, the type in [a-z_]; neither holds a byte of the type code that
# follows them (0x40 null, 0xa3 symbol, 0xa1 string), so the patterns never
# backtrack. The size bytes are checked after the match.
_ID_CHARS = rb"[A-Za-z0-9._:-]"
# `message_head` as one pattern: a single match in C instead of a walk
# through the bytes in Python (0.6 against 2.3 us).
_OWN_EVENT = re.compile(message_head(
    re.escape,
    rb"\xc0(.)" + re.escape(bytes((PROPERTY_COUNT,))),
    properties_fields(re.escape, rb"\xa1(.)(" + _ID_CHARS + rb"+)",
                      rb"(?:@|\xa1(.)(" + _ID_CHARS + rb"+))", rb"(.{8})"),
    rb"\xc1(.)" + re.escape(bytes((APPLICATION_COUNT,))),
    application_fields(re.escape, rb"\xa1(.)([a-z_]+)", rb"(.)"),
    rb"(?:\xa0(.)|\xb0(.{4}))",
), re.DOTALL)


def read_event(data: bytes) -> EventFields | None:
    """The fast path: the fields of a message laid out exactly as
    `encode_event` writes it; None for any other message (`decode` reads
    those)."""
    match = _OWN_EVENT.match(data)
    if match is None:
        return None
    (properties_size, id_size, message_id, correlation_size, correlation_id, created,
     application_size, type_size, event_type, version, small_body, large_body) = match.groups()
    properties_end = match.end(6) + 3
    body_size = small_body[0] if small_body is not None else _UINT.unpack(large_body)[0]
    if (properties_size[0] != properties_end - 5 or id_size[0] != len(message_id)
            or (correlation_size is not None and correlation_size[0] != len(correlation_id))
            or application_size[0] != match.end(10) - properties_end - 5
            or type_size[0] != len(event_type) or match.end() + body_size != len(data)):
        return None
    return EventFields(
        message_id.decode(), None if correlation_id is None else correlation_id.decode(),
        LONG.unpack(created)[0], event_type.decode(), _SIGNED_BYTE.unpack(version)[0],
        data[match.end():],
    )


class _Unsupported(Exception):
    """A valid type this reader leaves to rstream's decoder."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def message(self) -> Message:
        message = Message()
        bodies: list[bytes] = []
        if not self.data:
            raise ValueError("empty")
        while self.pos < len(self.data):
            if self.data[self.pos] != 0x00:
                raise ValueError("a section must be a described type")
            self.pos += 1
            code = self.value()
            section = _SECTIONS.get(code) if isinstance(code, int) else None
            if section is None:
                raise ValueError(f"unknown section {code!r}")
            value = self.value()
            if section == "properties":
                if not isinstance(value, list):
                    raise ValueError("properties must be a list")
                message.properties = dict(zip(_PROPERTY_FIELDS, value))
            elif section == "application_properties":
                message.application_properties = value
            elif section == "data":
                if not isinstance(value, bytes):
                    raise ValueError("a data section must be binary")
                bodies.append(value)
            elif section == "value":
                message.body = _value_body(value)
        if bodies:
            message.body = b"".join(bodies)
        return message

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise IndexError("truncated")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def unpack(self, layout: struct.Struct) -> Any:
        value = layout.unpack_from(self.data, self.pos)[0]
        self.pos += layout.size
        return value

    def value(self) -> Any:
        code = self.data[self.pos]
        self.pos += 1
        fixed = _FIXED.get(code)
        if fixed is not None:
            layout, convert = fixed
            if layout is None:
                return convert
            raw = self.unpack(layout)
            return convert(raw) if convert is not None else raw
        if code in (0xA0, 0xA1, 0xA3, 0xB0, 0xB1, 0xB3):
            size = self.unpack(_UBYTE if code < 0xB0 else _UINT)
            raw = self.take(size)
            return raw if code in (0xA0, 0xB0) else raw.decode("utf-8")
        if code in (0xC0, 0xC1, 0xD0, 0xD1):
            small = code < 0xD0
            size = self.unpack(_UBYTE if small else _UINT)
            end = self.pos + size
            count = self.unpack(_UBYTE if small else _UINT)
            items = [self.value() for _ in range(count)]
            if self.pos != end:
                raise ValueError("compound size does not match its items")
            if code in (0xC0, 0xD0):
                return items
            if count % 2:
                raise ValueError("a map needs an even number of items")
            return {_key(items[i]): items[i + 1] for i in range(0, count, 2)}
        if code == 0x00:  # a described value inside a section: keep the value
            self.value()
            return self.value()
        if code in (0xE0, 0xF0, 0x73, 0x74, 0x94, 0x84):  # arrays, char, decimals
            raise _Unsupported
        raise ValueError(f"unknown AMQP type 0x{code:02x}")


def _key(value: Any) -> Any:
    return value if isinstance(value, (str, int, bytes, bool)) or value is None else repr(value)


_FIXED: dict[int, tuple[struct.Struct | None, Any]] = {
    0x40: (None, None),
    0x41: (None, True),
    0x42: (None, False),
    0x43: (None, 0),
    0x44: (None, 0),
    0x45: (None, []),
    0x56: (_UBYTE, bool),
    0x50: (_UBYTE, None),
    0x51: (struct.Struct(">b"), None),
    0x52: (_UBYTE, None),
    0x53: (_UBYTE, None),
    0x54: (struct.Struct(">b"), None),
    0x55: (struct.Struct(">b"), None),
    0x60: (struct.Struct(">H"), None),
    0x61: (struct.Struct(">h"), None),
    0x70: (_UINT, None),
    0x71: (struct.Struct(">i"), None),
    0x72: (struct.Struct(">f"), None),
    0x80: (struct.Struct(">Q"), None),
    0x81: (LONG, None),
    0x82: (struct.Struct(">d"), None),
    0x83: (LONG, None),
    0x98: (struct.Struct(">16s"), lambda raw: uuid.UUID(bytes=raw)),
}


def _from_rstream(data: bytes) -> Message:
    try:
        parsed = amqp_decoder(data)
    except Exception as error:  # rstream's decoder raises anything on garbage
        raise AmqpError(f"not an AMQP 1.0 message ({type(error).__name__})") from None
    properties = parsed.properties
    body = parsed.body
    if isinstance(body, list):
        body = b"".join(part for part in body if isinstance(part, bytes))
    if body is None:
        body = _value_body(getattr(parsed, "value", None))
    return Message(
        properties={} if properties is None else {
            name: _text(getattr(properties, name, None)) for name in _PROPERTY_FIELDS
        },
        application_properties=None if parsed.application_properties is None else {
            _text(k): _text(v) for k, v in parsed.application_properties.items()
        } if isinstance(parsed.application_properties, dict) else parsed.application_properties,
        body=body if isinstance(body, bytes) else None,
    )


def _value_body(value: Any) -> bytes | None:
    """An amqp-value section as a body: a string (UTF-8) or binary; None for other values."""
    if isinstance(value, str):
        return value.encode()
    return value if isinstance(value, bytes) else None


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
