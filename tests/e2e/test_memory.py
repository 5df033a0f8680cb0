"""Memory stays bounded: under a flood of y_true that never get a prediction,
and over a 300,000-event soak at full speed."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

from nnmon.processors.core.duplicates import CAPACITY
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell import checkpoint
from nnmon.processors.shell.counts import read_counts
from nnmon.processors.watch.csv_tail import RowCounter
from nnmon.streams.client.connection import open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import codec
from nnmon.streams.events.ids import IdGenerator
from tests.streamtools import NNMON, Pipeline, nnmon_env


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


EVENTS = 300_000


def warm(config: PipelineConfig, processor: str, rows: int) -> bool:
    """features: 10,000 rows in the CSV. The others, which read features or
    predictions: their duplicate rule has filled its bounded memory
    (CAPACITY ids) and they processed 10,000 events more, by their own
    counts (plot, at a lower priority, runs well behind metric)."""
    if processor == "features":
        return rows >= 10_000
    counts = read_counts(config.logs_dir, processor)
    # drift counts three events an id (features, y_pred, y_true), each stream's rule its own.
    per_id = 3 if processor == "drift" else 1
    return counts is not None and int(counts["processed"]) >= per_id * (CAPACITY + 10_000)


def children_of(pid: int) -> dict[str, int]:
    """The processors `nnmon up` (pid) runs, by name: `python -m nnmon.processors NAME`."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent != pid:
                continue
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if arguments[1:3] == [b"-m", b"nnmon.processors"]:
            found[arguments[3].decode()] = int(entry.name)
    return found


def test_soak_300k_events_keep_every_processors_memory_within_20_percent(config: PipelineConfig) -> None:
    """RSS of each processor grows by less than 20% from warm-up (see
    `warm`) to its end, over 300,000 events at full speed."""
    up = subprocess.Popen([NNMON, "up", "--interval", "0", "--count", str(EVENTS), "--timeout", "600"],
                          env=nnmon_env(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = RowCounter(config.csv_path)
    samples: dict[str, list[float]] = {}
    try:
        while up.poll() is None:
            children = children_of(up.pid)
            done = rows.rows()
            for name, pid in children.items():
                try:
                    rss = rss_mb(pid)
                except (OSError, AssertionError):
                    continue  # exited meanwhile (features, once it has published)
                if warm(config, name, done):
                    samples.setdefault(name, []).append(rss)
            time.sleep(0.5)
    finally:
        if up.poll() is None:
            up.terminate()
        up.wait(60)
    assert up.returncode == 0
    assert rows.rows() == EVENTS
    assert set(samples) == {"features", "model", "metric", "drift", "plot"}
    # The median of the first and of the last few samples (every 0.5 s): one
    # sample can fall on a moment's peak, such as a checkpoint being written.
    start = {name: statistics.median(rss[:5]) for name, rss in samples.items()}
    end = {name: statistics.median(rss[-5:]) for name, rss in samples.items()}
    shown = {n: f"{start[n]:.1f} -> {end[n]:.1f} MB" for n in start}
    assert all(end[n] < 1.2 * start[n] for n in start), shown
