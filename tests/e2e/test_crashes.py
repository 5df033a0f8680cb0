"""Nothing lost, nothing doubled: real processes killed with SIGKILL at random
moments while events flow at full speed, and restarted each time."""

from __future__ import annotations

import asyncio
import random
import time

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
    rng = random.Random(f"{config.names.prefix}{victims}")
    try:
        pipeline.start("model")
        pipeline.start("metric")
        pipeline.start("features", "--interval", "0", "--count", str(EVENTS))
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
