"""Unit tests for nnmon.streams.events.codec: events <-> AMQP 1.0 messages with JSON bodies."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rstream import AMQPMessage, Properties, amqp_decoder

from nnmon.streams.events.codec import (
    NOT_A_ROW,
    SCHEMA_VERSION,
    UNKNOWN_MODEL,
    Event,
    FeaturesEvent,
    MalformedEvent,
    PredictionEvent,
    TruthEvent,
    decode,
    encode,
)
from nnmon.streams.events.templates import EventTemplate, PredictionTemplate

CREATED_MS = 1_700_000_000_123
FEATURES = FeaturesEvent(
    "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", 17, {"age": 0.038, "bmi": -0.0516, "s1": 1e-300}, CREATED_MS
)
TRUTH = TruthEvent("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", 151.0, CREATED_MS + 1)
PREDICTION = PredictionEvent(
    "0190a1b2-ffff-7e5f-8a6b-7c8d9e0f1a2b", FEATURES.id, 0.1 + 0.2, "ridge-v3", CREATED_MS + 2
)
EVENTS = [FEATURES, TRUTH, PREDICTION]
EVENT_TYPES = {FeaturesEvent: "features", TruthEvent: "y_true", PredictionEvent: "y_pred"}


def wire(event: Event) -> bytes:
    return bytes(encode(event))


def text(value: Any) -> Any:
    """rstream decodes AMQP strings and symbols as bytes; compare them as text."""
    return value.decode() if isinstance(value, bytes) else value


def crafted(
    body: bytes,
    event_type: Any = "y_true",
    schema_version: Any = SCHEMA_VERSION,
    creation_time: int | None = CREATED_MS,
    message_id: str | None = None,
) -> bytes:
    """A hand-made message, as another client might publish it."""
    application_properties = {"event_type": event_type, "schema_version": schema_version}
    return bytes(
        AMQPMessage(
            body=body,
            properties=Properties(
                message_id=message_id, content_type="application/json", creation_time=creation_time
            ),
            application_properties={k: v for k, v in application_properties.items() if v is not None},
        )
    )


def assert_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode(data)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_round_trip(event: Event) -> None:
    assert decode(wire(event)) == event


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_properties_seen_by_other_clients(event: Event) -> None:
    message = amqp_decoder(wire(event))
    properties = message.properties
    assert text(properties.message_id) == event.id
    assert text(properties.content_type) == "application/json"
    assert properties.creation_time == event.created_ms
    expected_correlation = event.features_id if isinstance(event, PredictionEvent) else None
    assert text(properties.correlation_id) == expected_correlation
    application = {text(k): text(v) for k, v in message.application_properties.items()}
    assert application == {"event_type": EVENT_TYPES[type(event)], "schema_version": SCHEMA_VERSION}


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_body_is_plain_json(event: Event) -> None:
    body = json.loads(amqp_decoder(wire(event)).body)
    assert body["id"] == event.id
    if isinstance(event, FeaturesEvent):
        assert body == {"id": event.id, "row": event.row, "features": event.features}
    elif isinstance(event, TruthEvent):
        assert body == {"id": event.id, "y_true": event.y_true}
    else:
        assert body == {
            "id": event.id,
            "features_id": event.features_id,
            "y_pred": event.y_pred,
            "model_version": event.model_version,
        }


def test_hand_made_message_decodes() -> None:
    assert decode(crafted(b'{"id":"abc","y_true":2}')) == TruthEvent("abc", 2.0, CREATED_MS)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", os.urandom(64), b"\x00Sw\xa1\x05hello", b"hello world"],
    ids=["empty", "nul", "random", "amqp-value-section", "text"],
)
def test_not_an_event_message(data: bytes) -> None:
    assert_malformed(data)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"{}",
        b'{"y_true": 1.0}',
        b'{"id": 7, "y_true": 1.0}',
        b'{"id": "", "y_true": 1.0}',
        b'{"id": "a,b", "y_true": 1.0}',
        b'{"id": "a\\nb", "y_true": 1.0}',
        b'{"id": "a\\"b", "y_true": 1.0}',
        b'{"id": "' + b"a" * 129 + b'", "y_true": 1.0}',
        b'{"id": "a", "y_true": "1.0"}',
        b'{"id": "a", "y_true": true}',
        b'{"id": "a", "y_true": null}',
        b'{"id": "a"}',
        b'{"id": "a", "y_true": NaN}',
        b'{"id": "a", "y_true": Infinity}',
        b'{"id": "a", "y_true": -Infinity}',
        b'{"id": "a", "y_true": 1e999}',
    ],
)
def test_bad_truth_body(body: bytes) -> None:
    assert_malformed(crafted(body))


def test_id_of_128_characters_is_fine() -> None:
    event_id = "a" * 128
    body = json.dumps({"id": event_id, "y_true": 1.5}).encode()
    assert decode(crafted(body)) == TruthEvent(event_id, 1.5, CREATED_MS)


@pytest.mark.parametrize(
    "features",
    [
        {"age": "0.1"},
        {"age": 0.1, "bmi": None},
        {"age": [0.1]},
        {"age": True},
        {},
        [0.1, 0.2],
        "age=0.1",
    ],
)
def test_bad_features(features: Any) -> None:
    body = json.dumps({"id": "a", "row": 3, "features": features}).encode()
    assert_malformed(crafted(body, event_type="features"))


@pytest.mark.parametrize("row", ["3", 3.0, True, None])
def test_bad_row(row: Any) -> None:
    body = json.dumps({"id": "a", "row": row, "features": {"age": 0.1}}).encode()
    assert_malformed(crafted(body, event_type="features"))


@pytest.mark.parametrize(
    "body",
    [
        {"id": "p", "features_id": "a,b", "y_pred": 1.0, "model_version": "v"},
        {"id": "p", "y_pred": 1.0, "model_version": "v"},
        {"id": "p", "features_id": "f", "y_pred": "1", "model_version": "v"},
        {"id": "p", "features_id": "f", "y_pred": 1.0, "model_version": 3},
    ],
)
def test_bad_prediction(body: dict[str, Any]) -> None:
    assert_malformed(crafted(json.dumps(body).encode(), event_type="y_pred"))


@pytest.mark.parametrize("version", [0, 2, "1", -1])
def test_wrong_schema_version(version: Any) -> None:
    assert_malformed(crafted(b'{"id":"a","y_true":1.0}', schema_version=version))


@pytest.mark.parametrize("event_type", ["prediction", "Y_TRUE", "", None, 5])
def test_unknown_event_type(event_type: Any) -> None:
    assert_malformed(crafted(b'{"id":"a","y_true":1.0}', event_type=event_type))


def test_missing_creation_time() -> None:
    assert_malformed(crafted(b'{"id":"a","y_true":1.0}', creation_time=None))


# What RabbitMQ stores for a plain AMQP 0-9-1 publish (pika 1.4, default
# exchange, message_id "abc", content_type application/json, timestamp
# 1700000000 s, no headers), read back over the stream protocol: message
# annotations, properties (creation_time in ms), a data section; no
# application properties.
PIKA_MESSAGE = bytes.fromhex(
    "005372c13304a30d782d726f7574696e672d6b6579a11370696b612d70726f62652d3333396161376635a30a782d65786368"
    "616e6765a100005373c02b0da1036162634040404040a3106170706c69636174696f6e2f6a736f6e4040830000018bcfe568"
    "00404040005375a0197b226964223a22616263222c22795f74727565223a312e357d")


def test_a_plain_amqp_091_publish_is_read_as_the_streams_event() -> None:
    assert decode(PIKA_MESSAGE, "y_true", CREATED_MS) == TruthEvent("abc", 1.5, 1_700_000_000_000)
    assert_malformed(PIKA_MESSAGE)  # nothing says what it is


def test_without_creation_time_the_event_time_is_the_brokers() -> None:
    message = crafted(b'{"id":"a","y_true":1.0}', creation_time=None, event_type=None, schema_version=None)
    assert decode(message, "y_true", broker_ms=CREATED_MS + 5) == TruthEvent("a", 1.0, CREATED_MS + 5)


@pytest.mark.parametrize("value", ['{"id":"a","y_true":2.5}', b'{"id":"a","y_true":2.5}'],
                         ids=["string", "binary"])
def test_an_amqp_value_body_is_read_like_a_data_section(value: str | bytes) -> None:
    message = bytes(AMQPMessage(value=value, properties=Properties(message_id="a", creation_time=CREATED_MS)))
    assert decode(message, "y_true") == TruthEvent("a", 2.5, CREATED_MS)


def test_an_amqp_value_that_is_no_text_is_refused() -> None:
    message = bytes(AMQPMessage(value=42, properties=Properties(message_id="a", creation_time=CREATED_MS)))
    with pytest.raises(MalformedEvent, match="neither a data section nor an amqp-value string or binary"):
        decode(message, "y_true")


def test_a_message_id_that_contradicts_the_body_is_refused() -> None:
    with pytest.raises(MalformedEvent, match="message_id 'b' differs from the body's id 'a'"):
        decode(crafted(b'{"id":"a","y_true":1.0}', message_id="b"))
    assert decode(crafted(b'{"id":"a","y_true":1.0}', message_id="a")) == TruthEvent("a", 1.0, CREATED_MS)


@pytest.mark.parametrize("message_id", [b"order-1", 17, uuid.UUID("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b")],
                         ids=["binary", "ulong", "uuid"])
def test_a_message_id_of_another_amqp_type_is_read_as_text(message_id: object) -> None:
    message = bytes(AMQPMessage(body=b'{"y_true":1.0}', properties=Properties(
        message_id=message_id, creation_time=CREATED_MS)))  # type: ignore[arg-type]
    text = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
    assert decode(message, "y_true") == TruthEvent(text, 1.0, CREATED_MS)


def test_the_message_id_is_the_id_of_a_body_without_one() -> None:
    assert decode(crafted(b'{"y_true":1.0}', message_id="m-7")) == TruthEvent("m-7", 1.0, CREATED_MS)
    assert_malformed(crafted(b'{"y_true":1.0}', message_id="a,b"))


def test_what_another_writer_may_leave_out() -> None:
    features = crafted(b'{"id":"f","features":{"age":0.5}}', event_type="features")
    assert decode(features) == FeaturesEvent("f", NOT_A_ROW, {"age": 0.5}, CREATED_MS)
    prediction = crafted(b'{"id":"p","features_id":"f","y_pred":2}', event_type="y_pred")
    assert decode(prediction) == PredictionEvent("p", "f", 2.0, UNKNOWN_MODEL, CREATED_MS)


def test_deeply_nested_json_body() -> None:
    assert_malformed(crafted(b"[" * 100_000 + b"]" * 100_000))


def test_integer_too_large_for_a_float() -> None:
    assert_malformed(crafted(b'{"id":"a","y_true":1' + b"0" * 400 + b"}"))


@pytest.mark.parametrize(
    "section",
    ["a10178", "5405", "c0030241 42".replace(" ", "")],
    ids=["string", "integer", "list"],
)
def test_application_properties_that_are_not_a_map(section: str) -> None:
    # Described type 0x74 (application-properties) holding a non-map value.
    assert_malformed(bytes.fromhex("005374" + section))


@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_malformed_event(data: bytes) -> None:
    try:
        event = decode(data)
    except Exception as error:  # noqa: BLE001 - the point is which type it is
        assert isinstance(error, MalformedEvent), repr(error)
    else:
        assert isinstance(event, (FeaturesEvent, TruthEvent, PredictionEvent))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.sampled_from(["features", "y_true", "y_pred"]),
    st.dictionaries(
        st.sampled_from(["id", "row", "features", "y_true", "y_pred", "features_id", "model_version"]),
        json_values,
        max_size=5,
    ),
)
def test_arbitrary_json_bodies_raise_only_malformed_event(event_type: str, body: dict[str, Any]) -> None:
    try:
        event = decode(crafted(json.dumps(body).encode(), event_type=event_type))
    except Exception as error:  # noqa: BLE001 - the point is which type it is
        assert isinstance(error, MalformedEvent), repr(error)
        return
    # Whatever decodes is a valid event: finite numbers, CSV-safe ids.
    numbers = {
        FeaturesEvent: lambda e: list(e.features.values()),
        TruthEvent: lambda e: [e.y_true],
        PredictionEvent: lambda e: [e.y_pred],
    }[type(event)](event)
    assert all(math.isfinite(n) for n in numbers)
    assert not any(c in event.id for c in ",\n\r\"")


ids = st.text("abcXYZ0129._:-", min_size=1, max_size=128)
finite = st.floats(allow_nan=False, allow_infinity=False)
times = st.integers(min_value=0, max_value=2**62)


@given(
    st.one_of(
        st.builds(
            FeaturesEvent,
            ids,
            st.integers(min_value=0, max_value=10**6),
            st.dictionaries(st.text(min_size=1, max_size=8), finite, min_size=1, max_size=5),
            times,
        ),
        st.builds(TruthEvent, ids, finite, times),
        st.builds(PredictionEvent, ids, ids, finite, st.text(max_size=20), times),
    )
)
def test_round_trip_of_arbitrary_events(event: Event) -> None:
    assert decode(wire(event)) == event


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_number_that_is_not_finite_is_never_written(value: float) -> None:
    with pytest.raises(ValueError):
        encode(TruthEvent("a", value, 0))
    with pytest.raises(ValueError):
        encode(PredictionEvent("b", "a", value, "v1", 0))


ID_TEXT = st.text(alphabet="0123456789abcdef-", min_size=36, max_size=36) | st.text(max_size=40)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
TEMPLATE_EVENTS = st.builds(
    FeaturesEvent, st.just(""), st.integers(0, 10**6),
    st.dictionaries(st.text(min_size=1, max_size=12), FINITE, min_size=1, max_size=30), st.just(0),
) | st.builds(TruthEvent, st.just(""), FINITE, st.just(0))


@given(TEMPLATE_EVENTS, ID_TEXT, st.integers(-(2**63), 2**63 - 1))
def test_a_template_writes_what_encode_writes(
    event: FeaturesEvent | TruthEvent, event_id: str, created_ms: int
) -> None:
    template = EventTemplate(event)
    expected = wire(dataclasses.replace(event, id=event_id, created_ms=created_ms))
    assert bytes(template.encode(event_id, created_ms)) == expected


@given(ID_TEXT, ID_TEXT, st.floats(), st.text(max_size=300), st.integers(-(2**63), 2**63 - 1))
def test_a_prediction_template_writes_what_encode_writes(
    event_id: str, features_id: str, y_pred: float, model_version: str, created_ms: int
) -> None:
    template = PredictionTemplate(model_version)
    event = PredictionEvent(event_id, features_id, y_pred, model_version, created_ms)
    if not math.isfinite(y_pred):
        with pytest.raises(ValueError):
            template.encode(event_id, features_id, y_pred, created_ms)
        return
    assert bytes(template.encode(event_id, features_id, y_pred, created_ms)) == wire(event)


def test_a_name_that_spells_a_template_marker_is_encoded_in_full() -> None:
    spelled = "v" + "~" * 40
    event = PredictionEvent(PREDICTION.id, FEATURES.id, 1.5, spelled, CREATED_MS)
    message = PredictionTemplate(spelled).encode(event.id, event.features_id, 1.5, CREATED_MS)
    assert bytes(message) == wire(event)
    features = FeaturesEvent(FEATURES.id, 3, {spelled: 0.5}, CREATED_MS)
    assert bytes(EventTemplate(features).encode(features.id, CREATED_MS)) == wire(features)
