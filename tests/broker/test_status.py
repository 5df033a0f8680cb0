"""`nnmon status` against a real pipeline: offsets, lag, the join, the CSV."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from datetime import datetime

import pandas as pd

from nnmon.processors.run.config import PipelineConfig
from nnmon.streams.events.ids import id_time_ms
from tests.streamtools import DATA_DIR, NNMON, free_port, nnmon_env, read_stream, run_nnmon


def status_json(config: PipelineConfig, *options: str) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    result = run_nnmon(config, "status", "--json", *options)
    return result, json.loads(result.stdout) if result.stdout else {}


def test_status_after_a_run_shows_every_stream_consumer_and_row(config: PipelineConfig) -> None:
    assert run_nnmon(config, "up", "--count", "40", "--interval", "0", "--every", "0.5").returncode == 0
    names = config.names
    result, status = status_json(config)
    assert result.returncode == 0, result.stderr

    streams = {s["name"]: s for s in status["streams"]}
    assert set(streams) == set(names.all() + names.derived())
    for name in (names.features, names.y_true, names.y_pred):
        read = asyncio.run(read_stream(config.broker, name, 40))
        assert streams[name]["exists"] and streams[name]["first"] == read[0][0]
        assert streams[name]["last"] >= read[-1][0]
        assert streams[name]["retention"] == {
            "x-max-age": config.retention.max_age, "x-max-length-bytes": config.retention.max_bytes,
            "x-stream-max-segment-size-bytes": config.retention.segment_bytes}
        if os.access(DATA_DIR, os.R_OK):  # the broker runs on this machine, as in CI
            assert streams[name]["bytes_on_disk"] > 0
    assert streams[names.rejected]["last"] is None  # nothing was rejected

    consumers = {(c["processor"], c["stream"]): c for c in status["consumers"]}
    assert set(consumers) == {("model", names.features), ("metric", names.y_true), ("metric", names.y_pred),
                              ("plot", names.y_true), ("plot", names.y_pred), ("drift", names.features),
                              ("drift", names.y_pred), ("drift", names.y_true)}
    for consumer in consumers.values():  # all stopped cleanly, having stored their last offsets
        assert consumer["stored"] == consumer["last"] == streams[consumer["stream"]]["last"]
        assert consumer["lag"] == 0 and consumer["behind_s"] == 0

    csv = pd.read_csv(config.csv_path)
    joins = {j["processor"]: j for j in status["joins"]}
    assert joins["metric"]["joined"] == len(csv) == status["csv"]["rows"] == 40
    assert joins["metric"]["pending"] == joins["metric"]["expired"] == 0
    last_row_at = datetime.fromisoformat(status["csv"]["last_row_at"]).timestamp()
    assert abs(last_row_at - id_time_ms(csv["id"].iloc[-1]) / 1000) < 0.001

    table = run_nnmon(config, "status")
    assert table.returncode == 0
    for name in names.all() + names.derived():
        assert name in table.stdout
    assert "CONSUMER" in table.stdout and "40 rows" in table.stdout
    # 40 events close no window of a minute: drift ran, and says it has none closed yet
    assert status["drift"]["summary"]["recent"] == {"features": [], "y_pred": [], "y_true": []}
    assert "  features: no closed window yet" in table.stdout and "DRIFT ALERTS: none firing" in table.stdout


def test_a_consumer_with_work_waiting_too_long_is_stale(config: PipelineConfig) -> None:
    # Features and y_true published, and no model, metric or plot running.
    assert run_nnmon(config, "features", "--count", "5", "--interval", "0").returncode == 0
    time.sleep(1.2)
    result, status = status_json(config, "--stale", "1")
    assert result.returncode == 0, "a consumer that never ran is not stale: " + result.stderr
    model = next(c for c in status["consumers"] if c["processor"] == "model")
    assert model["stored"] is None and model["lag"] == 5 and model["behind_s"] >= 1
    assert "never ran" in run_nnmon(config, "status").stdout

    # model runs (and stores its offset), then stops; features goes on.
    model_run = subprocess.Popen([NNMON, "model"], env=nnmon_env(config), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while status_json(config)[1]["consumers"][0]["stored"] is None:
            assert time.monotonic() < deadline, "model stored no offset"
            time.sleep(0.2)
    finally:
        model_run.terminate()
        assert model_run.wait(timeout=30) == 0
    assert run_nnmon(config, "features", "--count", "5", "--interval", "0").returncode == 0
    time.sleep(1.2)
    result, status = status_json(config, "--stale", "1")
    assert result.returncode == 1
    assert "model" in result.stderr and "--stale 1s" in result.stderr
    late = {(c["processor"], c["stream"]) for c in status["consumers"] if c["stored"] is not None
            and c["behind_s"] and c["behind_s"] > 1}
    assert late == {("model", config.names.features)}


def test_status_of_a_pipeline_that_never_ran_says_so(config: PipelineConfig) -> None:
    result, status = status_json(config)
    assert result.returncode == 0, result.stderr
    assert not any(s["exists"] for s in status["streams"])
    assert status["csv"]["rows"] == 0 and status["joins"] == []


def test_status_without_a_broker_is_one_line_and_status_2(config: PipelineConfig) -> None:
    result = run_nnmon(config, "status", "--port", str(free_port()))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_status_without_the_management_api_notes_what_is_missing(config: PipelineConfig) -> None:
    assert run_nnmon(config, "features", "--count", "3", "--interval", "0").returncode == 0
    result, status = status_json(config, "--management-url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 0, result.stderr
    assert any("management API" in note for note in status["notes"])
    features = next(s for s in status["streams"] if s["name"] == config.names.features)
    assert features["retention"] is None and features["last"] is not None
