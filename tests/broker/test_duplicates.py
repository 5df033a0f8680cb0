"""The duplicate rule against the real broker: an event written again (a
writer that retried) at any distance gives no second row, live or replayed,
and each repeat is refused and reported on the rejected stream."""

from __future__ import annotations

import asyncio
import time

import pandas as pd
from rstream import RawMessage

from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.pipeline.features import run_features
from nnmon.processors.pipeline.metric import run_metric
from nnmon.processors.pipeline.model import run_model
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.joined import JoinLimits
from nnmon.processors.watch.csv_tail import RowCounter
from nnmon.streams.client.connection import open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import codec
from nnmon.streams.events.ids import IdGenerator
from nnmon.streams.events.templates import EventTemplate, PredictionTemplate
from nnmon.streams.settings import BrokerSettings
from tests.streamtools import read_stream, run_nnmon, start, stream_length, wait_until

BATCH = 10_000


async def write_again(broker: BrokerSettings, messages: dict[str, bytes]) -> None:
    """What a writer that retried sends: the same bytes, once more."""
    async with open_producer(broker, "nnmon-tests-retrying-writer") as producer:
        await (await ConfirmedPublisher(producer).send_together(
            {stream: [RawMessage(data)] for stream, data in messages.items()}))


async def rejects(config: PipelineConfig, count: int) -> list[codec.Rejected]:
    return [codec.decode_rejected(data) for _, data in await read_stream(config.broker, config.names.rejected,
                                                                       count)]


def replayed_equals_live(config: PipelineConfig) -> None:
    out = config.logs_dir / "replayed.csv"
    done = run_nnmon(config, "replay", "--from-offset", "first", "--out", str(out), "--no-plot", timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == config.csv_path.read_bytes()


def test_features_and_truth_written_again_15000_events_later(config: PipelineConfig) -> None:
    names, rows = config.names, RowCounter(config.csv_path)

    async def scenario() -> None:
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await run_features(config, asyncio.Event(), interval=0, count=15_001, seed=5)
        (_, features), = await read_stream(config.broker, names.features, 1)
        (_, truth), = await read_stream(config.broker, names.y_true, 1)
        await write_again(config.broker, {names.features: features, names.y_true: truth})
        reported = await rejects(config, 2)
        await wait_until(lambda: rows.rows() >= 15_001, timeout=120, what="15,001 rows")
        await asyncio.sleep(1.5)  # room for a wrong extra row or prediction to show up
        await metric.finish()
        await model.finish()
        first_id = codec.decode(truth).id
        assert sorted((r.processor, r.source_stream, r.reason) for r in reported) == [
            ("metric", names.y_true, f"duplicate y_true for id {first_id}: its prediction already joined "
                                     "or expired"),
            ("model", names.features, f"duplicate features event for id {first_id}"),
        ]
        # After the 15,001 events (and the records of stored offsets among them).
        assert min(r.source_offset for r in reported) >= 15_001
        assert await stream_length(config.broker, names.y_pred) == 15_001
        assert await stream_length(config.broker, names.rejected) == 2

    asyncio.run(scenario())
    table = pd.read_csv(config.csv_path, dtype={"id": str})
    assert len(table) == 15_001 and table["id"].is_unique
    replayed_equals_live(config)


async def write_pairs(config: PipelineConfig, count: int, rows: RowCounter) -> tuple[bytes, bytes]:
    """`count` y_true and y_pred events, quickly (no features, no model),
    never more than a few batches ahead of metric's rows; the first pair's bytes."""
    made, template = IdGenerator(), PredictionTemplate("test")
    truths = EventTemplate(codec.TruthEvent("x" * 36, 1.0, 0))
    first: tuple[bytes, bytes] | None = None
    async with open_producer(config.broker, "nnmon-tests-writer") as producer:
        await declare_streams(producer, config.names.all(), config.retention)
        publisher = ConfirmedPublisher(producer)
        for written in range(0, count, BATCH):
            behind = written - 3 * BATCH
            await wait_until(lambda: rows.rows() >= behind, timeout=60, what="metric")  # noqa: B023
            now_ms = time.time_ns() // 1_000_000
            batch = [made.next_id() for _ in range(min(BATCH, count - written))]
            y_true = [truths.encode(i, now_ms) for i in batch]
            y_pred = [template.encode(made.next_id(), i, (n % 7) * 1.5, now_ms) for n, i in enumerate(batch)]
            first = first or (bytes(y_true[0]), bytes(y_pred[0]))
            await (await publisher.send_together({config.names.y_true: y_true, config.names.y_pred: y_pred}))
    assert first is not None
    return first


def test_truth_and_prediction_written_again_a_million_ids_later(config: PipelineConfig) -> None:
    """Far past what the rule remembers: refused by the time in the id."""
    names, count, rows = config.names, 1_000_001, RowCounter(config.csv_path)

    async def scenario() -> None:
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        truth, prediction = await write_pairs(config, count, rows)
        await write_again(config.broker, {names.y_true: truth, names.y_pred: prediction})
        reported = await rejects(config, 2)
        await wait_until(lambda: rows.rows() >= count, timeout=300, what=f"{count} rows")
        await metric.finish()
        first_id = codec.decode(truth).id
        assert sorted((r.source_stream, r.reason) for r in reported) == [
            (names.y_pred, f"y_pred for id {first_id} is older than the last 102400 predictions "
                           "remembered: a repeat, or too late to tell"),
            (names.y_true, f"y_true for id {first_id} comes after its prediction was forgotten "
                           "(older than the last 102400 predictions)"),
        ]
        assert min(r.source_offset for r in reported) >= count
        assert await stream_length(config.broker, names.rejected) == 2

    asyncio.run(scenario())
    assert rows.rows() == count
    replayed_equals_live(config)
