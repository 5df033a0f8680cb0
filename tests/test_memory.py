"""Memory stays bounded under a flood of y_true that never get a prediction."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

from processors import checkpoint
from processors.config import PipelineConfig
from streams import codec
from streams.connection import open_producer
from streams.ids import IdGenerator
from streams.publisher import ConfirmedPublisher
from streams.topology import declare_streams
from tests.test_crashes import Pipeline


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found, status
    return int(found.group(1)) / 1024


async def flood_y_true(config: PipelineConfig, count: int) -> None:
    ids = IdGenerator()
    async with open_producer(config.broker, "nnmon-tests") as producer:
        await declare_streams(producer, config.names.all(), config.retention)
        publisher = ConfirmedPublisher(producer)
        for _ in range(0, count, 1000):
            await publisher.publish(config.names.y_true, [
                codec.encode(codec.TruthEvent(ids.next_id(), 1.0, 0)) for _ in range(1000)])


def test_pending_joins_stay_within_their_limit_and_matching_goes_on(config: PipelineConfig) -> None:
    config.logs_dir.mkdir(parents=True)
    os.environ["NNMON_MAX_PENDING"] = "10000"
    try:
        pipeline = Pipeline(config)
    finally:
        del os.environ["NNMON_MAX_PENDING"]
    try:
        pipeline.start("metric")
        asyncio.run(flood_y_true(config, 2_000))
        deadline = time.monotonic() + 60
        while not config.checkpoint_path("metric").exists():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        before = rss_mb(pipeline.processes["metric"].pid)
        asyncio.run(flood_y_true(config, 200_000))
        pipeline.start("model")
        pipeline.start("features", "--interval", "0", "--count", "2000")
        while pipeline.rows() < 2000:
            assert time.monotonic() < deadline + 120, f"stuck at {pipeline.rows()} rows"
            time.sleep(0.2)
        after = rss_mb(pipeline.processes["metric"].pid)
    finally:
        pipeline.stop()
    saved = checkpoint.load(config.checkpoint_path("metric"), (config.names.y_true, config.names.y_pred))
    assert saved is not None
    join = saved.state["join"]
    assert join["counts"]["expired"] >= 202_000 - 10_000
    assert all(len(waiting) <= 10_000 for waiting in join["pending"].values())
    assert after - before < 60, f"metric grew from {before:.0f} to {after:.0f} MB"
    log = (config.logs_dir.parent / "processes.log").read_text()
    assert "expired unmatched" in log
