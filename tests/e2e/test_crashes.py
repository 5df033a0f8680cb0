"""Nothing lost, nothing doubled: real processes killed with SIGKILL at random
moments while 10,000 events a second flow, and restarted each time: the rows,
the predictions, the quality windows (file and stream) and the alerts."""

from __future__ import annotations

import asyncio
import random
import time

import pandas as pd
import pytest

from nnmon.processors.run.config import PipelineConfig
from nnmon.streams.events import codec
from tests.streamtools import Pipeline, read_stream, stream_length

EVENTS = 20_000


@pytest.mark.parametrize("victims", [("model",), ("metric",), ("model", "metric")])
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
        pipeline.start("features", "--interval", "0.0001", "--count", str(EVENTS),
                       "--concept-drift-after", str(EVENTS // 3))
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
    transitions = [(a["rule"], a["state"], a["window_start"]) for a in alerts]
    assert len(transitions) == len(set(transitions))
    assert [t[1] for t in transitions if t[0] == "mae_above_reference"] == ["firing"]
