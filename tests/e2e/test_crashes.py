"""Nothing lost, nothing doubled: real processes killed with SIGKILL at random
moments while 10,000 events a second flow, and restarted each time: the rows,
the predictions, the quality windows (file and stream), the drift windows
(file and stream) and the alerts."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pandas as pd
import pytest

from nnmon.processors.run.config import PipelineConfig
from nnmon.streams.client.connection import open_consumer
from nnmon.streams.events import codec
from nnmon.streams.read.reader import last_position
from tests.streamtools import Pipeline, read_stream, stream_length

EVENTS = 20_000


@pytest.mark.parametrize("victims", [("model",), ("metric",), ("model", "metric"), ("drift",)])
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    config: PipelineConfig, victims: tuple[str, ...]
) -> None:
    config.logs_dir.mkdir(parents=True)
    pipeline = Pipeline(config)
    # Windows of 0.1 s of prediction time. At 10,000 events/s (at full
    # speed the ids come in bursts of thousands, most windows empty) the
    # 20,000 ids span 2 s or more: 15 windows or more close during the run,
    # and the drift a third of the way in makes the rules fire.
    pipeline.env.update({"NNMON_WINDOW": "0.1", "NNMON_ALLOWED_LATENESS": "0.2"})
    rng = random.Random(f"{config.names.prefix}{victims}")
    try:
        pipeline.start("model")
        pipeline.start("metric")
        if "drift" in victims:
            pipeline.start("drift")
        pipeline.start("features", "--interval", "0.0001", "--count", str(EVENTS),
                       "--concept-drift-after", str(EVENTS // 3), "--covariate-drift-after", str(EVENTS // 2))
        kills = mid_flow = 0
        deadline = time.monotonic() + 120
        # The first kill when a random share of the rows is in: surely mid-flow.
        first_kill_at = int(EVENTS * rng.uniform(0.05, 0.4))
        while pipeline.rows() < first_kill_at:
            assert time.monotonic() < deadline, f"stuck at {pipeline.rows()} rows"
            time.sleep(0.002)
        while kills < 3 or (kills < 6 and pipeline.rows() < EVENTS - 1000):
            # Then some kills land in start-up, some mid-flow, some after a checkpoint.
            if kills:
                time.sleep(rng.uniform(0.3, 2.5))
            mid_flow += pipeline.rows() < EVENTS
            for name in victims:
                pipeline.kill_and_restart(name)
            kills += 1
        while pipeline.rows() < EVENTS:
            assert time.monotonic() < deadline, f"stuck at {pipeline.rows()} of {EVENTS} rows"
            time.sleep(0.1)
        if "drift" in victims:
            while not asyncio.run(drift_read_all(config)):
                assert time.monotonic() < deadline, "drift never read every event"
                time.sleep(0.5)
        time.sleep(2)  # room for a doubled row to show up
    finally:
        pipeline.stop()
    assert mid_flow >= 1, "no kill landed before the last row: the test told nothing"

    lines = config.csv_path.read_text().splitlines()
    assert lines[0] == "id,y_true,y_pred,absolute_error"
    ids = [line.split(",")[0] for line in lines[1:]]
    assert all(len(line.split(",")) == 4 for line in lines[1:]), "a torn row survived"
    assert len(ids) == len(set(ids)) == EVENTS

    truths = asyncio.run(read_stream(config.broker, config.names.y_true, EVENTS))
    assert set(ids) == {codec.decode(data).id for _, data in truths}
    predictions = asyncio.run(read_stream(config.broker, config.names.y_pred, EVENTS))
    predicted = [codec.decode(data) for _, data in predictions]
    assert len({p.features_id for p in predicted if isinstance(p, codec.PredictionEvent)}) == EVENTS
    assert asyncio.run(stream_length(config.broker, config.names.y_pred)) == EVENTS

    assert_windows_once(config)
    if "drift" in victims:
        assert_drift_once(config)


def assert_windows_once(config: PipelineConfig) -> None:
    """Every closed window once in the CSV and once, the same, in the quality
    stream; every alert transition once in the alerts stream."""
    windows = pd.read_csv(config.windows_path)
    assert windows["window_start"].is_unique and len(windows) >= 5
    quality = [codec.decode_derived(data)[1] for _, data in asyncio.run(
        read_stream(config.broker, config.names.quality, len(windows)))]
    assert asyncio.run(stream_length(config.broker, config.names.quality)) == len(windows)
    assert [q["window_start"] for q in quality] == windows["window_start"].tolist()
    # The same windows: unless a row came late (after its window closed), in
    # which case a window closed again after a crash may have been closed
    # before without it (the stream keeps the first).
    if sum(q["late_rows"] for q in quality) == 0:
        assert [q["rows"] for q in quality] == windows["rows"].tolist()
        # (null in an event where the CSV leaves an empty window's figure out)
        assert pd.Series([q["mae"] for q in quality], dtype=float).equals(windows["mae"])
    alerts_held = asyncio.run(stream_length(config.broker, config.names.alerts))
    alerts = [codec.decode_derived(data)[1] for _, data in asyncio.run(
        read_stream(config.broker, config.names.alerts, alerts_held))]
    transitions = [(a["rule"], a.get("column"), a["state"], a["window_start"]) for a in alerts]
    assert len(transitions) == len(set(transitions))
    assert [t[2] for t in transitions if t[0] == "mae_above_reference"] == ["firing"]


async def drift_read_all(config: PipelineConfig) -> bool:
    """Whether drift's checkpoint covers every message of its three streams."""
    try:
        saved = json.loads(config.checkpoint_path("drift").read_text())
    except (OSError, ValueError):
        return False
    names = config.names
    async with open_consumer(config.broker, "test") as consumer:
        for stream in (names.features, names.y_pred, names.y_true):
            end = await last_position(consumer, stream)
            if end is None or saved["streams"].get(stream) != end.offset:
                return False
    return True


def assert_drift_once(config: PipelineConfig) -> None:
    """Every closed drift window once in drift.csv per column and once, the
    same, in the drift stream per source; every event in exactly one window
    of each column (closed, or open in the checkpoint)."""
    table = pd.read_csv(config.drift_path)
    assert not table.duplicated(["window_start", "column"]).any()
    held = asyncio.run(stream_length(config.broker, config.names.drift))
    events = [codec.decode_derived(data)[1] for _, data in asyncio.run(
        read_stream(config.broker, config.names.drift, held))]
    saved = json.loads(config.checkpoint_path("drift").read_text())["state"]["view"]["tracks"]
    for source, column in (("features", "bmi"), ("y_pred", "y_pred"), ("y_true", "y_true")):
        mine = [e for e in events if e["source"] == source]
        rows = table[table["column"] == column]
        assert [e["window_start"] for e in mine] == rows["window_start"].tolist()
        assert [e["columns"][column]["rows"] for e in mine] == rows["rows"].tolist()
        still_open = sum(sum(value[column]["counts"]) for _, value in saved[source]["windows"]["open"])
        late = saved[source]["windows"]["late_rows"]
        assert rows["rows"].sum() + still_open + late == EVENTS
    # bmi drifted after the covariate drift: its alert fired once.
    held = asyncio.run(stream_length(config.broker, config.names.alerts))
    alerts = [codec.decode_derived(data)[1] for _, data in asyncio.run(
        read_stream(config.broker, config.names.alerts, held))]
    bmi = [a["state"] for a in alerts if a["rule"] == "feature_drift" and a.get("column") == "bmi"]
    assert bmi[:1] == ["firing"]
