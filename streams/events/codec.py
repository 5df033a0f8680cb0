"""Events and their wire format: AMQP 1.0 messages with a JSON body.

Any RabbitMQ client can read them: `message_id` is the event id,
`correlation_id` the features id on a prediction, `content_type` is
application/json, `creation_time` the event time (ms since the Unix epoch),
and the application properties carry `event_type` and `schema_version`.

Pure: no sockets here. `decode` raises `MalformedEvent` for anything that is
not a well-formed event, never another exception.
"""

from __future__ import annotations

import functools
import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from rstream import AMQPMessage, Properties, RawMessage

from nnmon.streams.wire import amqp

SCHEMA_VERSION = 1
ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what an event id may be
CONTENT_TYPE = "application/json"


# Events (like Record, Half and Pair) are built for every message read:
# slotted and not frozen, since a frozen dataclass sets each field through
# object.__setattr__, three times the cost (measured as 11% of replay).
@dataclass(slots=True)
class FeaturesEvent:
    """One model input. `row` is the index of the row in the data set."""

    id: str
    row: int
    features: dict[str, float]
    created_ms: int


@dataclass(slots=True)
class TruthEvent:
    """The true target of the features event with the same id."""

    id: str
    y_true: float
    created_ms: int


@dataclass(slots=True)
class PredictionEvent:
    """A model's prediction for the features event `features_id`."""

    id: str
    features_id: str
    y_pred: float
    model_version: str
    created_ms: int


Event = FeaturesEvent | TruthEvent | PredictionEvent


class MalformedEvent(ValueError):
    """A message that is not a well-formed nnmon event; the text says why."""


def encode(event: Event) -> RawMessage:
    """The event as an AMQP message, ready to publish (see `nnmon.streams.wire.amqp`)."""
    correlation_id = None
    if isinstance(event, FeaturesEvent):
        event_type = "features"
        # A data set has few distinct rows: their features' JSON is kept.
        data = b'{"id":%s,"row":%d,"features":%s}' % (
            _json(event.id), event.row, _features_json(tuple(event.features.items())))
    elif isinstance(event, TruthEvent):
        event_type = "y_true"
        data = _json({"id": event.id, "y_true": event.y_true})
    else:
        event_type = "y_pred"
        correlation_id = event.features_id
        data = _json({
            "id": event.id,
            "features_id": event.features_id,
            "y_pred": event.y_pred,
            "model_version": event.model_version,
        })
    return RawMessage(amqp.encode_event(event.id, correlation_id, event.created_ms, event_type,
                                        SCHEMA_VERSION, data))


def _json(value: object) -> bytes:
    # orjson: 7x faster to read and 20x faster to write than the standard
    # library, the largest cost of model and metric after the AMQP codec.
    # It writes NaN and infinity as null, where json refused them: refuse
    # them here, so no event carries a number that is not one.
    if isinstance(value, dict):
        for item in value.values():
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{item} is not a finite number")
    return orjson.dumps(value)


@functools.lru_cache(maxsize=4096)
def _features_json(items: tuple[tuple[str, float], ...]) -> bytes:
    return _json(dict(items))


# A rejected message keeps at most this much of the original, so that even a
# message of several MB is reported within one frame.
REJECTED_KEEP_BYTES = 256 * 1024


@dataclass(frozen=True)
class Rejected:
    """A message a processor could not use, and why."""

    reason: str
    source_stream: str
    source_offset: int
    processor: str
    original: bytes  # the message as read, cut to REJECTED_KEEP_BYTES
    original_size: int


def encode_rejected(rejected: Rejected) -> RawMessage:
    # Rare, and of any shape: rstream's general encoder is fine here.
    message = AMQPMessage(
        body=rejected.original[:REJECTED_KEEP_BYTES],
        properties=Properties(content_type="application/octet-stream"),
        application_properties={
            "event_type": "rejected",
            "schema_version": SCHEMA_VERSION,
            "reason": rejected.reason,
            "source_stream": rejected.source_stream,
            "source_offset": rejected.source_offset,
            "processor": rejected.processor,
            "original_size": rejected.original_size,
        },
    )
    return RawMessage(bytes(message))


def decode_rejected(data: bytes) -> Rejected:
    """Read back a message of the rejected stream (for tools and tests)."""
    message = amqp.decode(data)
    properties = message.application_properties
    return Rejected(
        str(properties["reason"]), str(properties["source_stream"]), int(properties["source_offset"]),
        str(properties["processor"]), message.body or b"", int(properties["original_size"]),
    )


EVENT_TYPES = {FeaturesEvent: "features", TruthEvent: "y_true", PredictionEvent: "y_pred"}


def decode(data: bytes, stream_type: str | None = None, broker_ms: int | None = None) -> Event:
    """Decode one message read from a stream.

    nnmon's own events say what they are (application property
    `event_type`). A message from another writer needs no more than a
    `message_id` and a JSON body, as a data section or an amqp-value string
    or binary: its type is then `stream_type` (the stream's), its time
    `broker_ms` (when the broker stored it) if it has no `creation_time`,
    and a `schema_version` it leaves out is taken for the current one. What
    would be unsafe to guess is refused: a `message_id` that differs from the
    body's `id`, a `schema_version` of another version. The body's fields are
    checked for presence, type and finiteness.
    """
    own = amqp.read_event(data)  # the fast path: an event as nnmon writes it
    event_type: object
    version: object
    raw_body: bytes | None
    message_id: object
    created_ms: object
    if own is not None:
        event_type, version, raw_body = own.event_type, own.schema_version, own.body
        message_id, created_ms = own.message_id, own.created_ms
    else:
        event_type, version, raw_body, message_id, created_ms = _read_any(data)
        event_type = stream_type if event_type is None else event_type
        version = SCHEMA_VERSION if version is None else version
        created_ms = broker_ms if created_ms is None else created_ms
    if type(version) is not int or version != SCHEMA_VERSION:
        raise MalformedEvent(f"unsupported schema_version {version!r}")
    if raw_body is None:
        raise MalformedEvent("the body is neither a data section nor an amqp-value string or binary")
    body = _json_body(raw_body)
    if type(created_ms) is not int:
        raise MalformedEvent("creation_time is missing")
    message_text = _message_id_text(message_id)
    if "id" not in body and message_text is not None:
        body["id"] = message_text
    event_id = _id(body, "id")
    if message_text is not None and message_text != event_id:
        raise MalformedEvent(f"message_id {message_text!r} differs from the body's id {event_id!r}")
    if event_type == "features":
        return FeaturesEvent(event_id, _row(body), _features(body), created_ms)
    if event_type == "y_true":
        return TruthEvent(event_id, _number(body, "y_true"), created_ms)
    if event_type == "y_pred":
        version_text = body.get("model_version", UNKNOWN_MODEL)
        if not isinstance(version_text, str):
            raise MalformedEvent("model_version is not a string")
        return PredictionEvent(
            event_id, _id(body, "features_id"), _number(body, "y_pred"), version_text, created_ms
        )
    if event_type is None:
        raise MalformedEvent("event_type is missing, and the stream does not say it")
    raise MalformedEvent(f"unknown event_type {event_type!r}")


def _message_id_text(message_id: object) -> str | None:
    """A message_id as the text an event id is: AMQP allows a string, binary,
    a uuid or an unsigned long."""
    if message_id is None or isinstance(message_id, str):
        return message_id
    if isinstance(message_id, bytes):
        try:
            return message_id.decode()
        except UnicodeDecodeError:
            raise MalformedEvent("message_id is binary that is not UTF-8") from None
    if isinstance(message_id, (int, uuid.UUID)) and not isinstance(message_id, bool):
        return str(message_id)
    raise MalformedEvent(f"message_id of type {type(message_id).__name__}")


UNKNOWN_MODEL = "unknown"  # the model_version of a prediction that names none
NOT_A_ROW = -1  # the row of a features event that does not come from the built-in data set


def _read_any(data: bytes) -> tuple[object, object, bytes | None, object, object]:
    """The event type, schema version, body, message id and creation time of
    any AMQP message, unchecked (None where absent)."""
    try:
        message = amqp.decode(data)
    except amqp.AmqpError as error:
        raise MalformedEvent(str(error)) from None
    properties = message.application_properties
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise MalformedEvent("application properties are not a map")
    return (properties.get("event_type"), properties.get("schema_version"), message.body,
            message.properties.get("message_id"), message.properties.get("creation_time"))


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        # What orjson refuses and json reads (NaN, integers beyond 64 bits)
        # is then refused by the field checks with a more precise reason.
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedEvent("body is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedEvent("body is not a JSON object")
    return value


def _id(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise MalformedEvent(f"{key} is missing or not a string")
    # Ids go verbatim into the CSV: no separators, quotes or line breaks.
    if not ID_PATTERN.fullmatch(value):
        raise MalformedEvent(f"{key} is not 1-128 characters of [A-Za-z0-9._:-]")
    return value


def _number(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedEvent(f"{key} is missing or not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        raise MalformedEvent(f"{key} is too large") from None
    if not math.isfinite(number):
        raise MalformedEvent(f"{key} is not finite")
    return number


def _row(body: dict[str, Any]) -> int:
    row = body.get("row", NOT_A_ROW)
    if isinstance(row, bool) or not isinstance(row, int):
        raise MalformedEvent("row is not an integer")
    return row


def _features(body: dict[str, Any]) -> dict[str, float]:
    return checked_features(body.get("features"))


def checked_features(features: object) -> dict[str, float]:
    """A features event's `features`, as read from its JSON: a non-empty
    object of finite numbers, integers made floats (in place)."""
    if not isinstance(features, dict) or not features:
        raise MalformedEvent("features is missing or not a JSON object")
    for name, value in features.items():
        # The common case, cheaply: a finite float (x - x is nan for nan and inf).
        if type(value) is not float or value - value != 0.0:
            features[name] = _number(features, name)
    return features


# Derived facts (a closed window's quality, an alert's transition) are events
# of the same layout on streams of their own, with a JSON object for a body.
DERIVED_TYPES = ("quality", "alert", "drift")


def encode_derived(event_type: str, message_id: str, created_ms: int, body: dict[str, Any]) -> RawMessage:
    """A derived event; NaN and infinities must already be null in `body`."""
    if event_type not in DERIVED_TYPES:
        raise ValueError(f"unknown derived event type {event_type!r}")
    return RawMessage(amqp.encode_event(message_id, None, created_ms, event_type, SCHEMA_VERSION,
                                        orjson.dumps(body)))


def decode_derived(data: bytes) -> tuple[str, dict[str, Any]]:
    """The event type and body of a derived event; MalformedEvent for anything else."""
    try:
        message = amqp.decode(data)
    except amqp.AmqpError as error:
        raise MalformedEvent(str(error)) from None
    application = message.application_properties if isinstance(message.application_properties, dict) else {}
    event_type = application.get("event_type")
    if event_type not in DERIVED_TYPES:
        raise MalformedEvent(f"not a derived event (event_type {event_type!r})")
    try:
        body = orjson.loads(message.body or b"")
    except orjson.JSONDecodeError:
        raise MalformedEvent("the body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedEvent("the body is not a JSON object")
    return str(event_type), body
