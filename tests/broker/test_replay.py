"""`nnmon replay` and `nnmon plot --from-offset` over real history."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.pipeline.features import run_features
from nnmon.processors.pipeline.metric import run_metric
from nnmon.processors.pipeline.model import run_model
from nnmon.processors.pipeline.plot import run_plot
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.drawing import ROWS_KEY
from nnmon.processors.shell.joined import JoinLimits
from nnmon.streams.read.offsets import parse_start
from nnmon.streams.settings import Retention
from tests.streamtools import read_stream, run_nnmon, start, wait_until


def table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"id": str}).sort_values("id").reset_index(drop=True)


def rows_in(config: PipelineConfig) -> int:
    return len(pd.read_csv(config.csv_path)) if config.csv_path.exists() else 0


async def live_run(config: PipelineConfig, count: int) -> None:
    """Run features, model and metric until `count` more rows are in the CSV."""
    target = rows_in(config) + count
    model = start(lambda stop: run_model(config, stop, default_predictor()))
    metric = start(lambda stop: run_metric(config, stop, JoinLimits()))
    await run_features(config, asyncio.Event(), interval=0, count=count, seed=3)
    await wait_until(lambda: rows_in(config) >= target, what=f"{target} rows")
    await metric.finish()
    await model.finish()


def test_a_replay_from_first_gives_the_live_rows(config: PipelineConfig) -> None:
    asyncio.run(live_run(config, 120))
    out = config.logs_dir / "replayed.csv"
    done = run_nnmon(config, "replay", "--from-offset", "first", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "replayed 120 rows" in done.stdout and "0 y_true without prediction" in done.stdout
    pd.testing.assert_frame_equal(table(out), table(config.csv_path))
    with Image.open(out.with_suffix(".png")) as png:
        assert int(png.text[ROWS_KEY]) == 120  # type: ignore[attr-defined]


def test_a_live_replay_from_an_offset_keeps_what_follows_and_metric_carries_on(
    config: PipelineConfig,
) -> None:
    asyncio.run(live_run(config, 60))
    offsets = asyncio.run(read_stream(config.broker, config.names.y_true, 60))
    from_offset = offsets[20][0]
    done = run_nnmon(config, "replay", "--from-offset", str(from_offset))
    assert done.returncode == 0, done.stderr
    assert "replayed 40 rows" in done.stdout
    asyncio.run(live_run(config, 25))  # metric resumes where the replay ended
    rows = table(config.csv_path)
    assert len(rows) == 65 and rows["id"].is_unique


def test_to_offset_is_inclusive(config: PipelineConfig) -> None:
    asyncio.run(live_run(config, 30))
    offsets = [offset for offset, _ in asyncio.run(read_stream(config.broker, config.names.y_true, 30))]
    out = config.logs_dir / "part.csv"
    done = run_nnmon(config, "replay", "--from-offset", str(offsets[5]), "--to-offset", str(offsets[14]),
                 "--out", str(out), "--no-plot")
    assert done.returncode == 0, done.stderr
    assert len(table(out)) == 10 and not out.with_suffix(".png").exists()


@pytest.mark.parametrize("where", ["yesterday", "-3", "12:00 on monday"])
def test_an_unknown_start_is_refused_with_one_line(config: PipelineConfig, where: str) -> None:
    done = run_nnmon(config, "replay", "--from-offset", where)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--from-offset" in done.stderr


def test_a_start_past_the_end_is_refused(config: PipelineConfig) -> None:
    asyncio.run(live_run(config, 5))
    done = run_nnmon(config, "replay", "--from-offset", "999999")
    assert done.returncode == 2 and "past the end" in done.stderr


def test_offsets_removed_by_retention_are_named_not_a_crash(config: PipelineConfig) -> None:
    # Small segments and byte limit: features publishes chunks of ~30 kB of
    # y_true, each then in a segment of its own, and only the last two or so stay.
    small = PipelineConfig(config.broker, config.names,
                           Retention("1h", max_bytes=60_000, segment_bytes=10_000), config.logs_dir)
    asyncio.run(run_features(small, asyncio.Event(), interval=0, count=1000, seed=0))
    asyncio.run(declare(small))
    first = asyncio.run(first_offset_of(small))
    assert first > 0, "retention removed nothing; the test cannot tell"
    out = config.logs_dir / "kept.csv"
    done = run_nnmon(small, "replay", "--from-offset", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"offsets before {first}" in done.stderr and "removed by retention" in done.stderr


async def declare(config: PipelineConfig) -> None:
    from nnmon.streams.client.connection import open_consumer
    from nnmon.streams.client.topology import declare_streams

    async with open_consumer(config.broker, "nnmon-tests") as consumer:
        await declare_streams(consumer, config.names.all(), config.retention)


async def first_offset_of(config: PipelineConfig) -> int:
    from nnmon.streams.client.connection import open_consumer
    from nnmon.streams.read.reader import position_at

    async with open_consumer(config.broker, "nnmon-tests") as consumer:
        # A generous wait: on a loaded machine the probe's default (2 s) was
        # seen to pass without the stream's first chunk.
        first = await position_at(consumer, config.names.y_true, parse_start("first"), wait_s=10)
    assert first is not None
    return first.offset


def test_plot_from_an_offset_rebuilds_the_histogram_from_that_point(config: PipelineConfig) -> None:
    asyncio.run(live_run(config, 50))
    offsets = asyncio.run(read_stream(config.broker, config.names.y_true, 50))

    async def scenario() -> None:
        plot = start(lambda stop: run_plot(config, stop, JoinLimits(), 0.5, parse_start(str(offsets[30][0]))))
        await wait_until(lambda: png_rows(config) == 20, what="a PNG of 20 rows")
        await plot.finish()

    asyncio.run(scenario())
    assert config.csv_path.exists() and len(table(config.csv_path)) == 50  # CSV untouched


def png_rows(config: PipelineConfig) -> int:
    try:
        with Image.open(config.png_path) as png:
            return int(png.text[ROWS_KEY])  # type: ignore[attr-defined]
    except (FileNotFoundError, OSError):
        return -1
