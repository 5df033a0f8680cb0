"""Quality over time on the real broker: a run with concept drift whose alert
is read back by a plain rstream consumer, the quality stream against the
CSV, a replay's windows against the live ones, `nnmon check`, `nnmon status`,
and bad configuration refused before anything is published."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import rstream
from rstream import ConsumerOffsetSpecification, OffsetType
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error

from nnmon.processors.core.dataset import DemoDrift
from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.core.rules import default_rules
from nnmon.processors.pipeline.features import run_features
from nnmon.processors.pipeline.metric import run_metric
from nnmon.processors.pipeline.model import run_model
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.joined import JoinLimits
from nnmon.processors.shell.quality_setup import builtin_reference, checked
from nnmon.processors.shell.windows_log import QualitySettings
from nnmon.streams.client.connection import open_consumer
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.settings import BrokerSettings
from tests.streamtools import run_nnmon, start, wait_until

EVENTS = 2000
DRIFT_AFTER = 800
WINDOW = ("--window", "0.5", "--allowed-lateness", "1")


def settings() -> QualitySettings:
    return QualitySettings(0.5, 1.0, checked(default_rules(), builtin_reference()), builtin_reference())


def rows_in(config: PipelineConfig) -> int:
    return len(pd.read_csv(config.csv_path)) if config.csv_path.exists() else 0


async def drifting_run(config: PipelineConfig) -> None:
    """2,000 events 2 ms apart (4 s of prediction time), the truths drifting after 800."""
    model = start(lambda stop: run_model(config, stop, default_predictor()))
    metric = start(lambda stop: run_metric(config, stop, JoinLimits(), settings()))
    await run_features(config, asyncio.Event(), interval=0.002, count=EVENTS, seed=5,
                       drift=DemoDrift(concept_after=DRIFT_AFTER))
    await wait_until(lambda: rows_in(config) >= EVENTS, 60, f"{EVENTS} rows")
    await metric.finish()
    await model.finish()


async def read_with_rstream(broker: BrokerSettings, stream: str) -> list[dict[str, Any]]:
    """Every message of `stream` as its JSON body and application properties,
    read by rstream's own consumer and AMQP decoder."""
    got: list[dict[str, Any]] = []

    async def on_message(message: rstream.AMQPMessage, context: rstream.MessageContext) -> None:
        properties = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                      for k, v in (message.application_properties or {}).items()}
        got.append({"properties": properties, **json.loads(bytes(message.body))})

    consumer = rstream.Consumer(broker.host, broker.port, username=broker.user, password=broker.password)
    await consumer.start()
    try:
        await consumer.subscribe(stream, on_message, decoder=rstream.amqp_decoder,
                                 offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST))
        seen = -1
        while seen != len(got):  # until nothing new comes for a second
            seen = len(got)
            await asyncio.sleep(1.0)
    finally:
        await consumer.close()
    return got


@pytest.fixture
def drifted(config: PipelineConfig) -> PipelineConfig:
    asyncio.run(drifting_run(config))
    return config


def test_concept_drift_fires_an_alert_read_back_from_the_alerts_stream(drifted: PipelineConfig) -> None:
    config = drifted
    alerts = asyncio.run(read_with_rstream(config.broker, config.names.alerts))
    firing = [a for a in alerts if a["rule"] == "mae_above_reference"]
    assert [a["state"] for a in firing] == ["firing"]  # once, and it stays firing: the drift stays
    [alert] = firing
    assert alert["properties"]["event_type"] == "alert"
    data = load_diabetes()
    reference_mae = mean_absolute_error(data.target, LinearRegression().fit(data.data, data.target)
                                        .predict(data.data))
    assert alert["reference"] == pytest.approx(reference_mae, rel=1e-12)
    assert alert["threshold"] == pytest.approx(1.2 * reference_mae, rel=1e-12)
    assert alert["value"] > alert["threshold"]
    # Windows with rows (an empty one, had a loaded machine held features
    # back, leaves the rules as they were).
    windows = pd.read_csv(config.windows_path).query("rows > 0").reset_index(drop=True)
    # The window it fired at is the second in a row above the threshold, and
    # the windows before the drift are below it.
    above = (windows["mae"] > alert["threshold"]).tolist()
    fired_at = windows.index[windows["window_start"] == alert["window_start"]][0]
    assert above[fired_at] and above[fired_at - 1] and not any(above[:fired_at - 1])
    assert not above[0]


def test_each_window_is_once_in_the_csv_and_once_in_the_quality_stream(drifted: PipelineConfig) -> None:
    config = drifted
    windows = pd.read_csv(config.windows_path)
    assert list(windows.columns) == ["window_start", "window_end", "rows", "mae", "rmse", "bias", "r2",
                                     "mape", "max_error", "p50", "p90", "p99"]
    assert windows["window_start"].is_unique and len(windows) >= 5
    events = asyncio.run(read_with_rstream(config.broker, config.names.quality))
    assert [e["window_start"] for e in events] == windows["window_start"].tolist()
    assert [e["rows"] for e in events] == windows["rows"].tolist()
    assert [e["mae"] for e in events] == windows["mae"].tolist()  # the same floats, to the last digit
    summary = orjson.loads((config.logs_dir / ".quality.json").read_bytes())
    open_rows = sum(w["rows"] for w in summary["open"])
    assert summary["late_rows"] == 0
    assert windows["rows"].sum() + open_rows == EVENTS  # every row in exactly one window


def test_a_replay_rebuilds_the_live_windows_row_for_row(drifted: PipelineConfig) -> None:
    config = drifted
    out = config.logs_dir / "replayed.csv"
    done = run_nnmon(config, "replay", "--from-offset", "first", "--out", str(out), *WINDOW)
    assert done.returncode == 0, done.stderr
    assert (config.logs_dir / "replayed_windows.csv").read_bytes() == config.windows_path.read_bytes()
    live = config.windows_path.read_bytes()
    done = run_nnmon(config, "replay", "--from-offset", "first", *WINDOW)  # the live view, swapped
    assert done.returncode == 0, done.stderr
    assert config.windows_path.read_bytes() == live

    # The streams go on while metric is stopped: a live replay closes the
    # windows metric never closed, and publishes them (once: the broker
    # drops those metric had published).
    asyncio.run(more_events_without_metric(config, 500))
    done = run_nnmon(config, "replay", "--from-offset", "first", *WINDOW)
    assert done.returncode == 0, done.stderr
    windows = pd.read_csv(config.windows_path)
    assert len(windows) > len(pd.read_csv(config.logs_dir / "replayed_windows.csv"))
    events = asyncio.run(read_with_rstream(config.broker, config.names.quality))
    assert [e["window_start"] for e in events] == windows["window_start"].tolist()


async def more_events_without_metric(config: PipelineConfig, count: int) -> None:
    model = start(lambda stop: run_model(config, stop, default_predictor()))
    await run_features(config, asyncio.Event(), interval=0.002, count=count, seed=6)
    await asyncio.sleep(2)  # model's last predictions
    await model.finish()


def test_check_gates_on_the_alerts_and_status_lists_them(drifted: PipelineConfig) -> None:
    config = drifted
    checked = run_nnmon(config, "check", "--json", *WINDOW)
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    live = pd.read_csv(config.windows_path)
    assert [w["window_start"] for w in report["windows"]][:len(live)] == live["window_start"].tolist()
    streamed = asyncio.run(read_with_rstream(config.broker, config.names.alerts))
    assert [(a["rule"], a["state"], a["window_start"]) for a in report["alerts"]][:len(streamed)] == \
        [(a["rule"], a["state"], a["window_start"]) for a in streamed]
    calm = run_nnmon(config, "check", "--to-offset", "400", *WINDOW)  # before the drift
    assert calm.returncode == 0, calm.stderr
    assert "0 alerts fired" in calm.stdout

    status = run_nnmon(config, "status", "--fail-on-alert")
    assert status.returncode == 1
    assert "mae_above_reference" in status.stdout and "alerts firing" in status.stderr


def bad_configurations(tmp_path: Path) -> list[tuple[list[str], str]]:
    not_toml = tmp_path / "broken.toml"
    not_toml.write_text("[[rule]\nname = ")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[[rule]]\nname = "x"\nfigure = "accuracy"\nabove = 1\n')
    no_columns = tmp_path / "reference.csv"
    no_columns.write_text("truth,prediction\n1,2\n")
    return [
        (["--rules", str(not_toml)], "is not valid TOML"),
        (["--rules", str(unknown)], "unknown figure 'accuracy'"),
        (["--reference-file", str(no_columns)], "has no column y_true or y_pred"),
        (["--reference-from", "first"], "has no joined rows"),
        (["--window", "0"], "--window must be a positive number"),
        (["--allowed-lateness", "-1"], "--allowed-lateness must be 0 or more"),
    ]


async def declare_empty(config: PipelineConfig) -> None:
    async with open_consumer(config.broker, "nnmon-tests") as consumer:
        await declare_streams(consumer, (config.names.y_true, config.names.y_pred), config.retention)


async def exists(config: PipelineConfig, stream: str) -> bool:
    async with open_consumer(config.broker, "nnmon-tests") as consumer:
        return bool(await consumer.stream_exists(stream))


def test_bad_configuration_is_one_line_and_exit_2_before_anything_is_published(
    config: PipelineConfig, tmp_path: Path,
) -> None:
    asyncio.run(declare_empty(config))  # the reference range exists, and holds nothing
    for arguments, words in bad_configurations(tmp_path):
        for command in ("metric", "check"):
            result = run_nnmon(config, command, *arguments)
            assert result.returncode == 2, (command, arguments, result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
    assert not asyncio.run(exists(config, config.names.quality))
    assert not config.windows_path.exists()
