"""Real processes stop cleanly on SIGTERM and SIGINT: exit 0, offsets stored;
and plot runs at a lower CPU priority."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import BACKGROUND_NICENESS
from nnmon.processors.shell import checkpoint
from nnmon.streams.client.connection import open_consumer
from nnmon.streams.read.reader import stored_offset
from tests.streamtools import NNMON, nnmon_env


def spawn(config: PipelineConfig, *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen([NNMON, *arguments], env=nnmon_env(config), stderr=subprocess.PIPE, text=True)


def rows(config: PipelineConfig) -> int:
    try:
        return len(pd.read_csv(config.csv_path))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_processors_flush_and_store_offsets_when_signalled(config: PipelineConfig, signum: int) -> None:
    processes = [spawn(config, "features", "--interval", "0.05"), spawn(config, "model"),
                 spawn(config, "metric")]
    try:
        deadline = time.monotonic() + 60
        while rows(config) < 10:
            assert time.monotonic() < deadline, "no rows within 60s"
            assert all(p.poll() is None for p in processes), [p.stderr.read() for p in processes if p.stderr]
            time.sleep(0.2)
    finally:
        for process in processes:
            process.send_signal(signum)
        statuses = [process.wait(timeout=30) for process in processes]
    assert statuses == [0, 0, 0], [p.stderr.read() for p in processes if p.stderr]

    saved = checkpoint.load(config.checkpoint_path("metric"), (config.names.y_true, config.names.y_pred))
    assert saved is not None
    # Everything the CSV holds is covered by the checkpoint: nothing to redo.
    assert saved.state["view"]["csv_bytes"] == config.csv_path.stat().st_size

    async def offsets() -> tuple[int | None, int | None]:
        async with open_consumer(config.broker, "nnmon-tests") as consumer:
            return (await stored_offset(consumer, config.names.features, config.names.consumer("model")),
                    await stored_offset(consumer, config.names.y_true, config.names.consumer("metric")))

    model_offset, metric_offset = asyncio.run(offsets())
    assert model_offset is not None and metric_offset == saved.streams[config.names.y_true]


@pytest.mark.parametrize("processor", ["plot", "drift"])
def test_readers_beside_the_csv_path_run_at_a_lower_cpu_priority(config: PipelineConfig,
                                                                  processor: str) -> None:
    """plot and drift yield the CPU to the processors on the path to the CSV."""
    expected = min(os.nice(0) + BACKGROUND_NICENESS, 19)
    process = spawn(config, processor)
    try:
        deadline = time.monotonic() + 30
        while niceness(process.pid) != expected:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, f"{processor} at niceness {niceness(process.pid)}"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)
