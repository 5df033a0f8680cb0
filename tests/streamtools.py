"""Helpers for tests against the real broker: read a stream back, run a
processor in the background, wait for a condition."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import rstream
from rstream import ConsumerOffsetSpecification, OffsetType

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.watch.csv_tail import RowCounter
from nnmon.streams.client.connection import open_consumer
from nnmon.streams.client.management import default_url
from nnmon.streams.events import codec
from nnmon.streams.settings import BrokerSettings


async def read_stream(
    broker: BrokerSettings, stream: str, count: int, timeout: float = 30
) -> list[tuple[int, bytes]]:
    """The first `count` messages of `stream` as (offset, bytes); fails after `timeout`."""
    got: list[tuple[int, bytes]] = []
    done = asyncio.Event()

    async def on_message(data: bytes, context: rstream.MessageContext) -> None:
        got.append((context.offset, data))
        if len(got) >= count:
            done.set()

    async with open_consumer(broker, "nnmon-tests-reader") as consumer:
        await wait_for_stream(consumer, stream, timeout)
        await consumer.subscribe(stream, on_message,
                                 offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST))
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{stream}: {len(got)} of {count} messages after {timeout}s") from None
    return got[:count]


async def wait_for_stream(consumer: rstream.Consumer, stream: str, timeout: float) -> None:
    """Wait until a processor has declared `stream`."""
    deadline = time.monotonic() + timeout
    while not await consumer.stream_exists(stream):
        if time.monotonic() > deadline:
            raise AssertionError(f"{stream} was not created within {timeout}s")
        await asyncio.sleep(0.1)


async def read_events(broker: BrokerSettings, stream: str, count: int) -> list[codec.Event]:
    return [codec.decode(data) for _, data in await read_stream(broker, stream, count)]


async def stream_length(broker: BrokerSettings, stream: str, settle_s: float = 1.0) -> int:
    """How many messages `stream` holds: reads until nothing new comes for `settle_s`."""
    got = 0

    async def on_message(data: bytes, context: rstream.MessageContext) -> None:
        nonlocal got
        got += 1

    async with open_consumer(broker, "nnmon-tests-counter") as consumer:
        await consumer.subscribe(stream, on_message,
                                 offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST))
        seen = -1
        while seen != got:
            seen = got
            await asyncio.sleep(settle_s)
    return got


@dataclass
class Running:
    """A processor coroutine running as a task, stoppable like by SIGTERM."""

    stop: asyncio.Event
    task: asyncio.Task[object]

    async def finish(self, timeout: float = 20) -> object:
        self.stop.set()
        return await asyncio.wait_for(self.task, timeout)


def start(run: Callable[[asyncio.Event], Awaitable[object]]) -> Running:
    stop = asyncio.Event()
    return Running(stop, asyncio.ensure_future(run(stop)))


async def wait_until(condition: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


NNMON = str(Path(sys.executable).with_name("nnmon"))

# The test broker's other doors: scripts/broker's by default; another broker
# (say RabbitMQ 4 on other ports) through the CLI's own variables, and
# NNMON_TEST_AMQP_PORT for AMQP 0-9-1, which nnmon itself never speaks.
AMQP_PORT = int(os.environ.get("NNMON_TEST_AMQP_PORT", "5672"))
DATA_DIR = Path(os.environ.get("NNMON_BROKER_DATA_DIR", "/var/lib/rabbitmq/mnesia"))


def management_url(broker: BrokerSettings) -> str:
    return os.environ.get("NNMON_MANAGEMENT_URL") or default_url(broker)


def nnmon_env(config: PipelineConfig) -> dict[str, str]:
    """The environment that points an `nnmon` process at `config`'s pipeline."""
    return {**os.environ, "NNMON_STREAM_PREFIX": config.names.prefix,
            "NNMON_LOGS_DIR": str(config.logs_dir), "NNMON_MAX_AGE": config.retention.max_age,
            "NNMON_MAX_BYTES": str(config.retention.max_bytes),
            "NNMON_SEGMENT_BYTES": str(config.retention.segment_bytes)}


def run_nnmon(
    config: PipelineConfig, *arguments: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `nnmon ARGUMENTS` to the end against `config`'s pipeline."""
    return subprocess.run([NNMON, *arguments], env=nnmon_env(config), capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Pipeline:
    """features, model and metric as separate processes under one prefix."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.env = nnmon_env(config)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # Reads only what was appended: the tests poll every few ms while
        # the pipeline runs on the same two cores.
        self._rows = RowCounter(config.csv_path)
        self.log = open(config.logs_dir.parent / "processes.log", "ab")

    def start(self, name: str, *arguments: str) -> None:
        self.processes[name] = subprocess.Popen([NNMON, name, *arguments], env=self.env,
                                                stdout=self.log, stderr=self.log)

    def kill_and_restart(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.start(name)

    def rows(self) -> int:
        return self._rows.rows()

    def log_text(self) -> str:
        """What the processes have logged so far."""
        self.log.flush()
        return (self.config.logs_dir.parent / "processes.log").read_text()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            process.wait(timeout=30)
        self.log.close()


def run_through(config: PipelineConfig, disturb: Callable[[Pipeline], None], events: int = 1500,
                env: dict[str, str] | None = None) -> str:
    """features (an event every 10 ms, `events` in all), model and metric
    as processes; `disturb(pipeline)` once 200 rows are in; then on until
    every row is in the CSV, with model and metric running throughout.
    Checks that every event gave exactly one row and one prediction; the
    processes' log."""
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(config)
    pipeline.env.update(env or {})
    try:
        pipeline.start("model")
        pipeline.start("metric")
        pipeline.start("features", "--interval", "0.01", "--count", str(events))
        deadline = time.monotonic() + 60
        while pipeline.rows() < 200:
            assert time.monotonic() < deadline, "the pipeline never got going"
            time.sleep(0.1)
        disturb(pipeline)
        deadline = time.monotonic() + 180
        while pipeline.rows() < events:
            assert time.monotonic() < deadline, f"stuck at {pipeline.rows()} of {events} rows"
            assert all(p.poll() is None for n, p in pipeline.processes.items() if n != "features")
            time.sleep(0.2)
        time.sleep(2)  # room for a wrong extra row to show up
        assert pipeline.processes["features"].wait(timeout=60) == 0
    finally:
        pipeline.stop()
    ids = [line.split(",")[0] for line in config.csv_path.read_text().splitlines()[1:]]
    assert len(ids) == len(set(ids)) == events
    truths = asyncio.run(read_stream(config.broker, config.names.y_true, events))
    assert set(ids) == {codec.decode(data).id for _, data in truths}
    assert asyncio.run(stream_length(config.broker, config.names.y_true)) == events
    assert asyncio.run(stream_length(config.broker, config.names.y_pred)) == events
    logs = (config.logs_dir.parent / "processes.log").read_text()
    assert "Traceback" not in logs
    return logs
