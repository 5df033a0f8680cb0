"""A broker outage in the middle of a run: RabbitMQ's application is stopped
for 15 s and started again. Every processor reconnects by itself and the CSV
ends with every row exactly once."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from nnmon.processors.run.config import PipelineConfig
from tests.streamtools import Pipeline, run_through

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
    def stop_for_15_s(_: Pipeline) -> None:
        outage()
        time.sleep(15)
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")

    assert "retrying in" in run_through(config, stop_for_15_s, EVENTS)
