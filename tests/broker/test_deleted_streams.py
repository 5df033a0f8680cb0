"""Streams deleted, or deleted and created again, under the processors."""

from __future__ import annotations

import asyncio

import pytest

from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.pipeline.features import run_features
from nnmon.processors.pipeline.metric import run_metric
from nnmon.processors.pipeline.model import run_model
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.joined import JoinLimits
from nnmon.streams.client.connection import StreamDeleted, open_consumer
from tests.streamtools import read_events, start, wait_until


async def delete(config: PipelineConfig, stream: str) -> None:
    async with open_consumer(config.broker, "nnmon-tests") as consumer:
        await consumer.delete_stream(stream)


def rows(config: PipelineConfig) -> int:
    return config.csv_path.read_text().count("\n") - 1 if config.csv_path.exists() else 0


@pytest.mark.parametrize("processor", ["model", "metric"])
def test_a_deleted_stream_stops_the_processor_with_a_clear_error(
    config: PipelineConfig, processor: str
) -> None:
    async def scenario() -> None:
        await run_features(config, asyncio.Event(), interval=0, count=5, seed=0)
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        await read_events(config.broker, config.names.y_pred, 5)
        running = model
        if processor == "metric":
            running = start(lambda stop: run_metric(config, stop, JoinLimits()))
            await wait_until(lambda: rows(config) == 5, what="5 rows")
        await delete(config, config.names.y_pred)
        with pytest.raises(StreamDeleted, match="deleted"):
            await asyncio.wait_for(running.task, 20)
        if running is not model:  # the model writes y_pred: it stops the same way
            with pytest.raises(StreamDeleted):
                await model.finish()

    asyncio.run(scenario())


def test_model_refuses_features_that_were_created_again(config: PipelineConfig) -> None:
    async def scenario() -> None:
        await run_features(config, asyncio.Event(), interval=0, count=20, seed=0)
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        await read_events(config.broker, config.names.y_pred, 20)
        await model.finish()
        await delete(config, config.names.features)
        await run_features(config, asyncio.Event(), interval=0, count=3, seed=0)
        with pytest.raises(UsageError, match="recreated"):
            await run_model(config, asyncio.Event(), default_predictor())

    asyncio.run(scenario())


def test_metric_rebuilds_when_its_streams_were_created_again(config: PipelineConfig) -> None:
    async def scenario() -> None:
        await run_features(config, asyncio.Event(), interval=0, count=30, seed=0)
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await wait_until(lambda: rows(config) == 30, what="30 rows")
        await metric.finish()
        await model.finish()
        for stream in config.names.all():
            await delete(config, stream)
        await run_features(config, asyncio.Event(), interval=0, count=4, seed=0)
        model = start(lambda stop: run_model(config, stop, default_predictor()))
        metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
        await wait_until(lambda: rows(config) == 4, what="the view rebuilt from the new streams")
        await asyncio.sleep(1)
        await metric.finish()
        await model.finish()
        assert rows(config) == 4

    asyncio.run(scenario())
