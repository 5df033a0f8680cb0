"""The processors against the real broker, run in-process under a random prefix."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
import rstream
from rstream import RawMessage

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.pipeline.features import run_features
from nnmon.processors.pipeline.metric import run_metric
from nnmon.processors.pipeline.model import run_model
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.counts import read_counts
from nnmon.processors.shell.joined import JoinLimits
from nnmon.streams.client.connection import open_consumer, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.events import codec
from nnmon.streams.events.ids import IdGenerator
from nnmon.streams.read.reader import stored_offset
from tests.streamtools import read_events, read_stream, start, stream_length, wait_until


def csv_rows(config: PipelineConfig) -> pd.DataFrame:
    return pd.read_csv(config.csv_path, dtype={"id": str})


def rows_in(config: PipelineConfig) -> int:
    return len(csv_rows(config)) if config.csv_path.exists() else 0


async def publish_features(config: PipelineConfig, count: int) -> None:
    await run_features(config, asyncio.Event(), interval=0, count=count, seed=1)


def test_features_publish_the_same_id_on_both_streams(config: PipelineConfig) -> None:
    async def scenario() -> None:
        sent = await run_features(config, asyncio.Event(), interval=0, count=30, seed=7)
        assert sent == 30
        features = await read_events(config.broker, config.names.features, 30)
        truths = await read_events(config.broker, config.names.y_true, 30)
        assert [f.id for f in features] == [t.id for t in truths]
        assert len({f.id for f in features}) == 30
        data = diabetes()
        for f, t in zip(features, truths):
            assert isinstance(f, codec.FeaturesEvent) and isinstance(t, codec.TruthEvent)
            assert list(f.features) == list(data.feature_names)
            assert np.array_equal(list(f.features.values()), data.features[f.row])
            assert t.y_true == data.target[f.row]

    asyncio.run(scenario())


def test_model_predicts_what_scikit_learn_predicts_and_stores_its_offset(config: PipelineConfig) -> None:
    async def scenario() -> None:
        await publish_features(config, 25)
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        predictions = await read_events(config.broker, config.names.y_pred, 25)
        await model.finish()
        features = await read_events(config.broker, config.names.features, 25)
        expected = default_predictor().regressor.predict(diabetes().features[[f.row for f in features]])
        by_id = {p.features_id: p.y_pred for p in predictions}
        assert list(by_id) == [f.id for f in features]
        np.testing.assert_allclose(list(by_id.values()), expected, rtol=1e-12)
        async with open_consumer(config.broker, "nnmon-tests") as consumer:
            offset = await stored_offset(consumer, config.names.features, config.names.consumer("model"))
        assert offset is not None and offset >= 24

    asyncio.run(scenario())


def test_model_rerun_over_old_offsets_publishes_nothing_twice(config: PipelineConfig) -> None:
    async def scenario() -> None:
        await publish_features(config, 20)
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        await read_events(config.broker, config.names.y_pred, 20)
        await model.finish()
        # Pretend the model died before storing most of its progress, and
        # lost its checkpoint: it reads features from the start again.
        async with open_consumer(config.broker, "nnmon-tests") as consumer:
            await consumer.store_offset(config.names.features, config.names.consumer("model"), 3)
        config.checkpoint_path("model").unlink()
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        await publish_features(config, 5)
        await read_events(config.broker, config.names.y_pred, 25)
        await model.finish()
        assert await stream_length(config.broker, config.names.y_pred) == 25
        counts = read_counts(config.logs_dir, "model")
        assert counts is not None and counts["processed"] == 5, "only what the broker did not have yet"

    asyncio.run(scenario())


def test_model_resumes_from_its_checkpoint_and_predicts_a_repeated_features_id_once(
    config: PipelineConfig,
) -> None:
    async def scenario() -> None:
        await publish_features(config, 10)
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        await read_events(config.broker, config.names.y_pred, 10)
        await model.finish()
        (_, first), = await read_stream(config.broker, config.names.features, 1)
        async with open_producer(config.broker, "nnmon-tests") as producer:
            twice = [RawMessage(first), RawMessage(first)]
            await (await ConfirmedPublisher(producer).send(config.names.features, twice))
        await publish_features(config, 3)
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        await read_events(config.broker, config.names.y_pred, 13)
        (_, rejected), (_, again) = await read_stream(config.broker, config.names.rejected, 2)
        await model.finish()
        assert await stream_length(config.broker, config.names.y_pred) == 13
        first_id = codec.decode(first).id
        assert {codec.decode_rejected(r).reason for r in (rejected, again)} == {
            f"duplicate features event for id {first_id}"}

    asyncio.run(scenario())


def test_metric_joins_and_resumes_without_losing_or_doubling_rows(config: PipelineConfig) -> None:
    async def scenario() -> None:
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await publish_features(config, 40)
        await wait_until(lambda: rows_in(config) >= 40, what="40 rows")
        await metric.finish()
        await publish_features(config, 30)
        await read_events(config.broker, config.names.y_pred, 70)
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await wait_until(lambda: rows_in(config) >= 70, what="70 rows")
        await asyncio.sleep(1.5)  # room for a wrong extra row to show up
        await metric.finish()
        await model.finish()
        rows = csv_rows(config)
        assert len(rows) == 70 and rows["id"].is_unique
        truths = await read_events(config.broker, config.names.y_true, 70)
        assert set(rows["id"]) == {t.id for t in truths}
        np.testing.assert_allclose(rows["absolute_error"], (rows["y_true"] - rows["y_pred"]).abs())

    asyncio.run(scenario())


def test_metric_keeps_pending_halves_across_a_restart(config: PipelineConfig) -> None:
    """A y_true read before the metric stopped still joins with a y_pred
    published after it restarted."""

    async def scenario() -> None:
        await publish_features(config, 10)  # y_true only: no model yet
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await asyncio.sleep(2)
        await metric.finish()
        assert rows_in(config) == 0
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        await read_events(config.broker, config.names.y_pred, 10)
        await model.finish()
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await wait_until(lambda: rows_in(config) >= 10, what="10 rows")
        await metric.finish()
        assert len(csv_rows(config)) == 10

    asyncio.run(scenario())


def test_a_torn_last_row_is_replaced_not_kept(config: PipelineConfig) -> None:
    async def scenario() -> None:
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await publish_features(config, 15)
        await wait_until(lambda: rows_in(config) >= 15, what="15 rows")
        await metric.finish()
        with open(config.csv_path, "a") as file:
            file.write("01234567-89ab-7cde-8f01-23456789abcd,151.0,20")  # cut mid-row
        await publish_features(config, 5)
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await wait_until(lambda: rows_in(config) >= 20, what="20 rows")
        await metric.finish()
        await model.finish()
        rows = csv_rows(config)
        assert len(rows) == 20 and rows["id"].is_unique
        assert "01234567-89ab-7cde-8f01-23456789abcd" not in set(rows["id"])
        assert config.csv_path.read_text().endswith("\n")

    asyncio.run(scenario())


def test_malformed_messages_are_reported_and_the_good_ones_around_them_processed(
    config: PipelineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        names = config.names
        async with open_producer(config.broker, "nnmon-tests") as producer:
            await producer.create_stream(names.features, config.retention.arguments(), exists_ok=True)
            publisher = ConfirmedPublisher(producer)
            good = [codec.FeaturesEvent(IdGenerator().next_id(), 0, diabetes().row_features(0), 1)
                    for _ in range(2)]
            bad = rstream.AMQPMessage(body=b"not json")
            # One batch, so all three share a chunk: a raising callback in
            # rstream would skip the rest of it.
            await publisher.publish(names.features, [codec.encode(good[0]), bad, codec.encode(good[1])])
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        predictions = await read_events(config.broker, names.y_pred, 2)
        await model.finish()
        assert [p.features_id for p in predictions] == [e.id for e in good]
        assert any("rejected" in r.message and "offset 1" in r.message for r in caplog.records)

    asyncio.run(scenario())


def test_a_second_metric_on_the_same_logs_is_refused(config: PipelineConfig) -> None:
    async def scenario() -> None:
        first = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await wait_until(lambda: config.csv_path.exists(), what="the first metric's CSV")
        with pytest.raises(UsageError, match="another metric process"):
            await run_metric(config, asyncio.Event(), JoinLimits())
        await first.finish()

    asyncio.run(scenario())
