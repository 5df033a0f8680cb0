"""Bad messages on the real streams, next to good ones: the processors keep
running, the good events are all processed, and each bad one is reported on
the rejected stream with its reason and where it came from."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from rstream import AMQPMessage, Properties

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.pipeline.metric import run_metric
from nnmon.processors.pipeline.model import run_model
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.joined import JoinLimits
from nnmon.streams.client.connection import open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.events import codec
from nnmon.streams.events.ids import IdGenerator
from tests.streamtools import read_stream, start, wait_until

NOW_MS = int(time.time() * 1000)


def crafted(event_type: str, body: bytes, message_id: str | None = None) -> AMQPMessage:
    """A message as another writer might send it: without a message_id, so
    each is refused for what is wrong with its body."""
    return AMQPMessage(
        body=body,
        properties=Properties(message_id=message_id, content_type="application/json", creation_time=NOW_MS),
        application_properties={"event_type": event_type, "schema_version": codec.SCHEMA_VERSION},
    )


def features_body(event_id: str | None, features: object) -> bytes:
    body: dict[str, object] = {"row": 0, "features": features}
    if event_id is not None:
        body["id"] = event_id
    return json.dumps(body).encode()


def test_bad_messages_are_rejected_and_the_good_ones_around_them_processed(
    config: PipelineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ids = IdGenerator()
    good = [ids.next_id() for _ in range(3)]
    row = diabetes().row_features(0)
    names = config.names
    bad_features = {
        "not AMQP": b"\x00\x01\x02 definitely not AMQP",
        "not JSON": crafted("features", b"{not json"),
        "no id": crafted("features", features_body(None, row)),
        "short vector": crafted("features", features_body(ids.next_id(), dict(list(row.items())[:9]))),
        "NaN": crafted("features", features_body(ids.next_id(), {**row, "age": float("nan")})),
        "infinity": crafted("features", json.dumps(
            {"id": ids.next_id(), "row": 0, "features": {**row, "age": 1e999}}).encode()),
        "strings": crafted("features", features_body(ids.next_id(), {**row, "bmi": "high"})),
        # Finite numbers whose prediction is not: -inf cannot be published.
        "prediction overflows": crafted("features", features_body(ids.next_id(), {n: 1e308 for n in row})),
        "several MB": crafted("features", b"x" * 3_000_000),
    }
    bad_truths = {
        "not a number": crafted("y_true", json.dumps({"id": ids.next_id(), "y_true": "151"}).encode()),
        "duplicate id": codec.encode(codec.TruthEvent(good[0], 1.0, NOW_MS)),
    }
    orphan = codec.PredictionEvent(ids.next_id(), ids.next_id(), 3.0, "v", NOW_MS)

    async def publish() -> None:
        async with open_producer(config.broker, "nnmon-tests") as producer:
            publisher = ConfirmedPublisher(producer)
            # The orphan first: the join window (2 s of stream time) has
            # passed it by the time the rest arrives.
            await publisher.publish(names.y_pred, [codec.encode(orphan)])
            await asyncio.sleep(2.5)
            # Each stream in one batch, so bad and good messages share chunks:
            # rstream skips the rest of a chunk after a raising callback.
            features = [codec.encode(codec.FeaturesEvent(i, 0, row, NOW_MS)) for i in good]
            feature_batch: list[AMQPMessage] = [features[0], *(
                m if isinstance(m, AMQPMessage) else _raw(m) for m in bad_features.values()),
                features[1], features[2]]
            await publisher.publish(names.features, feature_batch)
            truths = [codec.encode(codec.TruthEvent(i, 100.0, NOW_MS)) for i in good]
            await publisher.publish(names.y_true, [truths[0], *bad_truths.values(), truths[1], truths[2]])

    async def scenario() -> list[codec.Rejected]:
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        metric = start(lambda stop: run_metric(config, stop, JoinLimits(window_s=2)))
        await wait_until(lambda: sum("predicting" in r.message or "joining" in r.message
                                     for r in caplog.records) == 2, what="model and metric to start")
        await publish()
        await wait_until(lambda: config.csv_path.exists()
                         and config.csv_path.read_text().count("\n") == 4, what="3 rows")
        expected_rejects = len(bad_features) + len(bad_truths) + 1
        rejected = await read_stream(config.broker, names.rejected, expected_rejects)
        await metric.finish()
        await model.finish()
        assert not model.task.exception() and not metric.task.exception()
        return [codec.decode_rejected(data) for _, data in rejected]

    rejects = asyncio.run(scenario())
    rows = config.csv_path.read_text().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == sorted(good)

    by_stream: dict[str, list[codec.Rejected]] = {}
    for reject in rejects:
        by_stream.setdefault(reject.source_stream, []).append(reject)
    features_offsets = [r.source_offset for r in by_stream[names.features]]
    assert features_offsets == list(range(1, 1 + len(bad_features))), "each bad features message, in order"
    assert all(r.processor == "model" and r.reason for r in by_stream[names.features])
    big = by_stream[names.features][-1]
    assert big.original_size > 3_000_000 and len(big.original) == codec.REJECTED_KEEP_BYTES
    assert [r.source_offset for r in by_stream[names.y_true]] == [1, 2]
    assert "duplicate" in by_stream[names.y_true][1].reason
    [expired] = by_stream[names.y_pred]
    assert expired.source_offset == 0 and "within the join window" in expired.reason
    assert any("rejected so far" in r.message for r in caplog.records)


def _raw(data: bytes) -> AMQPMessage:
    """Bytes published as they are, without AMQP framing."""
    message = AMQPMessage(body=b"")
    message.__bytes__ = lambda: data  # type: ignore[method-assign]
    return message
