"""A broker outage in the middle of a run: RabbitMQ's application is stopped
for 15 s and started again. Every processor reconnects by itself and the CSV
ends with every row exactly once."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest

from nnmon.processors.run.config import PipelineConfig
from nnmon.streams.events import codec
from tests.streamtools import Pipeline, read_stream, stream_length

EVENTS = 1500


def rabbitmqctl(*arguments: str) -> None:
    command = shutil.which("rabbitmqctl")
    assert command is not None, "rabbitmqctl is needed to stop and start the local broker"
    subprocess.run([command, *arguments], check=True, capture_output=True, timeout=120)


@pytest.fixture
def outage() -> object:
    """Stops the broker when called; always starts it again afterwards."""
    stopped = []

    def stop() -> None:
        rabbitmqctl("stop_app")
        stopped.append(True)

    yield stop
    if stopped:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")


def test_processors_ride_out_a_broker_outage(config: PipelineConfig, outage) -> None:  # type: ignore[no-untyped-def]
    config.logs_dir.mkdir(parents=True)
    pipeline = Pipeline(config)
    try:
        pipeline.start("model")
        pipeline.start("metric")
        pipeline.start("features", "--interval", "0.01", "--count", str(EVENTS))
        deadline = time.monotonic() + 60
        while pipeline.rows() < 200:
            assert time.monotonic() < deadline, "the pipeline never got going"
            time.sleep(0.1)
        outage()
        time.sleep(15)
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        deadline = time.monotonic() + 180
        while pipeline.rows() < EVENTS:
            assert time.monotonic() < deadline, f"stuck at {pipeline.rows()} of {EVENTS} rows"
            assert all(p.poll() is None for n, p in pipeline.processes.items() if n != "features")
            time.sleep(0.2)
        time.sleep(2)
        assert pipeline.processes["features"].wait(timeout=60) == 0
    finally:
        pipeline.stop()

    ids = [line.split(",")[0] for line in config.csv_path.read_text().splitlines()[1:]]
    assert len(ids) == len(set(ids)) == EVENTS
    truths = asyncio.run(read_stream(config.broker, config.names.y_true, EVENTS))
    assert set(ids) == {codec.decode(data).id for _, data in truths}
    assert asyncio.run(stream_length(config.broker, config.names.y_true)) == EVENTS
    assert asyncio.run(stream_length(config.broker, config.names.y_pred)) == EVENTS

    logs = (config.logs_dir.parent / "processes.log").read_text()
    assert "retrying in" in logs and "Traceback" not in logs
