"""Drift on the real broker: a run whose features drift on purpose (bmi and
s5), the drift alerts read back by a plain rstream consumer, and replays
that rebuild drift.csv."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from nnmon.processors.core.dataset import COVARIATE_DRIFTED, DemoDrift
from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.pipeline.drift import run_drift
from nnmon.processors.pipeline.features import run_features
from nnmon.processors.pipeline.model import run_model
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.counts import read_counts
from nnmon.processors.shell.drift_setup import default_drift
from nnmon.streams.events import codec
from tests.broker.test_quality import read_with_rstream
from tests.streamtools import read_stream, run_nnmon, start, wait_until

EVENTS = 3000
DRIFT_AFTER = 1500
WINDOW = ("--window", "0.5", "--allowed-lateness", "1")
FEATURES = tuple(load_diabetes().feature_names)


def drift_read(config: PipelineConfig) -> int:
    """The events drift has read since it started."""
    return int((read_counts(config.logs_dir, "drift") or {}).get("processed", 0))


def open_rows(config: PipelineConfig, column: str) -> int:
    """The rows of `column` in the windows drift's checkpoint holds open."""
    saved = orjson.loads(config.checkpoint_path("drift").read_bytes())
    source = "features" if column in FEATURES else column
    windows = saved["state"]["view"]["tracks"][source]["windows"]["open"]
    return sum(sum(value[column]["counts"]) for _, value in windows)


async def drifting_run(config: PipelineConfig) -> None:
    """3,000 events 2 ms apart (6 s of prediction time, windows of 0.5 s),
    bmi and s5 shifted after 1,500."""
    model = start(lambda stop: run_model(config, stop, default_predictor()))
    drift = start(lambda stop: run_drift(config, stop, default_drift(0.5, 1.0)))
    await run_features(config, asyncio.Event(), interval=0.002, count=EVENTS, seed=5,
                       drift=DemoDrift(covariate_after=DRIFT_AFTER))
    await wait_until(lambda: drift_read(config) == 3 * EVENTS, 60, "drift to read every event")
    await drift.finish()
    await model.finish()


@pytest.fixture
def drifted(config: PipelineConfig) -> PipelineConfig:
    asyncio.run(drifting_run(config))
    return config


def before_and_after(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The judged windows wholly before the drift and wholly after it, told
    apart by bmi's mean (the shift is one standard deviation)."""
    std = load_diabetes().data[:, FEATURES.index("bmi")].std()
    bmi = table[table["column"] == "bmi"].set_index("window_start")["mean"]
    starts_before = bmi.index[bmi < 0.2 * std]
    starts_after = bmi.index[bmi > 0.8 * std]
    judged = table[table["drifted"].notna()]
    return (judged[judged["window_start"].isin(starts_before)],
            judged[judged["window_start"].isin(starts_after)])


def test_exactly_the_shifted_features_drift_and_their_alerts_are_read_back(drifted: PipelineConfig) -> None:
    config = drifted
    table = pd.read_csv(config.drift_path)
    assert list(table.columns) == ["window_start", "window_end", "column", "rows", "mean", "std", "psi",
                                   "wasserstein", "ks", "drifted"]
    assert set(table["column"]) == {*FEATURES, "y_pred", "y_true"}
    before, after = before_and_after(table)
    assert before["window_start"].nunique() >= 3 and after["window_start"].nunique() >= 3
    assert not before["drifted"].astype(bool).any()
    flagged = set(after[after["drifted"].astype(bool)]["column"])
    assert flagged == {*COVARIATE_DRIFTED, "y_pred"}  # the truths stay, the predictions move with bmi, s5
    # Every shifted window of bmi and s5 drifted, none of the others did.
    shifted = after[after["column"].isin(COVARIATE_DRIFTED)]
    assert shifted["drifted"].astype(bool).all() and (shifted["psi"] > 0.2).all()

    alerts = asyncio.run(read_with_rstream(config.broker, config.names.alerts))
    firing = {(a["rule"], a.get("column")) for a in alerts if a["state"] == "firing"}
    assert firing == {("feature_drift", "bmi"), ("feature_drift", "s5"), ("prediction_drift", "y_pred")}
    alert = next(a for a in alerts if a.get("column") == "bmi")
    assert alert["properties"]["event_type"] == "alert" and alert["figure"] == "psi"
    assert alert["threshold"] == 0.2 and alert["value"] > 0.2
    # It fired at the second window in a row above 0.2: the first two after the drift.
    bmi = table[(table["column"] == "bmi") & table["drifted"].notna()].reset_index(drop=True)
    at = bmi.index[bmi["window_start"] == alert["window_start"]][0]
    assert bmi["drifted"][at] and bmi["drifted"][at - 1] and not bmi["drifted"][:at - 1].astype(bool).any()


def test_each_window_is_one_event_on_the_drift_stream(drifted: PipelineConfig) -> None:
    config = drifted
    table = pd.read_csv(config.drift_path)
    events = asyncio.run(read_with_rstream(config.broker, config.names.drift))
    assert {e["properties"]["event_type"] for e in events} == {"drift"}
    for source, columns in (("features", FEATURES), ("y_pred", ("y_pred",)), ("y_true", ("y_true",))):
        mine = [e for e in events if e["source"] == source]
        rows = table[table["column"] == columns[0]]
        assert [e["window_start"] for e in mine] == rows["window_start"].tolist()  # once each, in order
        assert [e["columns"][columns[0]]["psi"] for e in mine] == \
            pytest.approx(rows["psi"].tolist(), nan_ok=True, rel=0, abs=0)  # the same floats
        assert all(set(e["columns"]) == set(columns) for e in mine)
        assert sum(e["late_rows"] for e in mine) == 0
        # Every event in exactly one window: closed, or open in the checkpoint.
        for column in columns:
            assert table[table["column"] == column]["rows"].sum() + open_rows(config, column) == EVENTS


def sorted_lines(path: Path) -> list[str]:
    """A drift.csv's header and rows, the rows sorted: its sources interleave
    as their windows close, which a replay does in its own order."""
    header, *rows = path.read_text().splitlines()
    return [header, *sorted(rows)]


def test_a_replay_rebuilds_drift_csv_as_the_live_one(drifted: PipelineConfig) -> None:
    config = drifted
    live = sorted_lines(config.drift_path)
    out = config.logs_dir / "replayed.csv"
    done = run_nnmon(config, "replay", "--from-offset", "first", "--out", str(out), *WINDOW)
    assert done.returncode == 0, done.stderr
    assert sorted_lines(config.logs_dir / "replayed_drift.csv") == live
    joined_only = config.logs_dir / "joined_only.csv"
    done = run_nnmon(config, "replay", "--from-offset", "first", "--out", str(joined_only), "--no-drift",
                     *WINDOW)
    assert done.returncode == 0, done.stderr
    assert joined_only.exists() and not (config.logs_dir / "joined_only_drift.csv").exists()
    assert "the drift of" not in done.stdout
    done = run_nnmon(config, "replay", "--from-offset", "first", *WINDOW)  # the live view, swapped
    assert done.returncode == 0, done.stderr
    assert sorted_lines(config.drift_path) == live
    # drift carries on from the replay's end: the windows still open close
    # when the streams go on, each once.
    asyncio.run(more_events(config, 600))
    table = pd.read_csv(config.drift_path)
    assert len(table) > len(live) - 1
    assert not table.duplicated(["window_start", "column"]).any()
    events = asyncio.run(read_with_rstream(config.broker, config.names.drift))
    features = [e["window_start"] for e in events if e["source"] == "features"]
    assert features == table[table["column"] == "age"]["window_start"].tolist()


async def more_events(config: PipelineConfig, count: int) -> None:
    model = start(lambda stop: run_model(config, stop, default_predictor()))
    drift = start(lambda stop: run_drift(config, stop, default_drift(0.5, 1.0)))
    await run_features(config, asyncio.Event(), interval=0.002, count=count, seed=6)
    await wait_until(lambda: drift_read(config) == 3 * count, 60, "drift to read the new events")
    await drift.finish()
    await model.finish()


def test_bad_references_and_misfit_features_are_named(config: PipelineConfig, tmp_path: Path) -> None:
    data = load_diabetes()
    frame = pd.DataFrame(data.data, columns=FEATURES)
    lacking = tmp_path / "lacking.csv"
    frame.drop(columns=["s5"]).to_csv(lacking, index=False)
    done = run_nnmon(config, "drift", "--reference-file", str(lacking))
    assert done.returncode == 2 and "has no feature column s5" in done.stderr
    assert "Traceback" not in done.stderr
    words = tmp_path / "words.csv"
    frame.astype(object).assign(bmi=lambda f: f["bmi"].where(f.index != 7, "tall")).to_csv(words, index=False)
    done = run_nnmon(config, "drift", "--reference-file", str(words))
    assert done.returncode == 2 and "row 8 has no number in bmi" in done.stderr
    few = tmp_path / "few.csv"
    frame.head(12).to_csv(few, index=False)
    done = run_nnmon(config, "drift", "--reference-file", str(few))
    assert done.returncode == 2 and "cannot place its bins" in done.stderr
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\nfigure = "psi"\nabove = 0.1\ncolumn = "height"\n')
    done = run_nnmon(config, "drift", "--rules", str(rules))
    assert done.returncode == 2 and "has no column 'height'" in done.stderr

    # A file reference: features events with another set of columns are
    # rejected with the reason, the others counted.
    good = tmp_path / "reference.csv"
    frame.assign(extra=np.arange(len(frame))).to_csv(good, index=False)
    asyncio.run(misfits_run(config, good))
    rejected = [codec.decode_rejected(data) for _, data in
                asyncio.run(read_stream(config.broker, config.names.rejected, 3))]
    assert [(r.processor, r.source_stream, r.reason) for r in rejected] == [
        ("drift", config.names.features, "the features differ from the drift reference's: lacks s6")] * 3


async def misfits_run(config: PipelineConfig, reference: Path) -> None:
    from nnmon.processors.replay.reference import drift_settings
    from nnmon.processors.shell.quality_setup import QualityOptions
    from nnmon.streams.client.connection import open_producer
    from nnmon.streams.client.topology import declare_streams

    settings = await drift_settings(config, QualityOptions(0.5, 1.0, reference_file=reference))
    assert settings.reference.features == FEATURES  # "extra" is no feature
    async with open_producer(config.broker, "test") as producer:
        await declare_streams(producer, (config.names.features,), config.retention)
        row = dict(zip(FEATURES, load_diabetes().data[0].tolist()))
        del row["s6"]
        await producer.send_batch(config.names.features, [codec.encode(codec.FeaturesEvent(
            f"misfit-{i}", 0, row, 0)) for i in range(3)])
    drift = start(lambda stop: run_drift(config, stop, settings))
    await wait_until(lambda: (read_counts(config.logs_dir, "drift") or {}).get("rejected") == 3, 30,
                     "drift to reject the three")
    await drift.finish()


def test_check_judges_the_drift_of_history_as_drift_did(drifted: PipelineConfig) -> None:
    config = drifted
    checked = run_nnmon(config, "check", "--json", *WINDOW)
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)["drift"]
    streamed = asyncio.run(read_with_rstream(config.broker, config.names.alerts))
    drift_rules = {"feature_drift", "prediction_drift", "target_drift", "most_features_drifted"}
    def described(alert: dict[str, Any]) -> tuple[str, str | None, str, str]:
        return alert["rule"], alert.get("column"), alert["state"], alert["window_start"]

    assert [described(a) for a in report["alerts"]] == [
        described(a) for a in streamed if a["rule"] in drift_rules]
    live = pd.read_csv(config.drift_path)
    features = [w for w in report["windows"] if w["source"] == "features"]
    closed = live[live["column"] == "bmi"]
    assert [w["window_start"] for w in features][:len(closed)] == closed["window_start"].tolist()
    assert [w["columns"]["bmi"]["psi"] for w in features][:len(closed)] == \
        pytest.approx(closed["psi"].tolist(), nan_ok=True, rel=0, abs=0)
    calm = run_nnmon(config, "check", "--to-offset", str(DRIFT_AFTER // 2), *WINDOW)  # before the drift
    assert calm.returncode == 0, calm.stdout + calm.stderr
    assert "drift of features" in calm.stdout and "0 alerts fired" in calm.stdout
