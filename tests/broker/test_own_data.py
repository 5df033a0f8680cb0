"""Your own data: `nnmon features --data FILE --target COLUMN` streams a
generated CSV and a Parquet file, checked whole first (nothing published
from a file that fails), and drift takes the file as its reference."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from nnmon.processors.run.config import PipelineConfig
from nnmon.streams.client.connection import open_consumer
from nnmon.streams.events import codec
from tests.streamtools import NNMON, nnmon_env, read_events, run_nnmon, wait_until

ROWS = 300


def table(rows: int = ROWS) -> pd.DataFrame:
    generator = np.random.default_rng(3)
    frame = pd.DataFrame({"order": [f"order-{n}" for n in range(rows)],
                          "price": generator.normal(50, 10, rows), "weight": generator.uniform(1, 5, rows),
                          "city": generator.choice(["Oslo", "Lima"], rows)})
    frame["delivery_days"] = 2 + frame["weight"] * 0.5 + generator.normal(0, 0.2, rows)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_data_file_is_streamed_row_by_row_under_its_ids(config: PipelineConfig, tmp_path: Path,
                                                          suffix: str) -> None:
    frame, path = table(), tmp_path / f"orders{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    done = run_nnmon(config, "features", "--data", str(path), "--target", "delivery_days",
                     "--id-column", "order", "--interval", "0")
    assert done.returncode == 0, done.stderr
    features = asyncio.run(read_events(config.broker, config.names.features, ROWS))
    truths = asyncio.run(read_events(config.broker, config.names.y_true, ROWS))
    assert [e.id for e in features] == [e.id for e in truths] == frame["order"].tolist()
    assert all(isinstance(e, codec.FeaturesEvent) for e in features)
    # the features: every column of numbers but the target (city has none: no feature)
    assert [e.features for e in features if isinstance(e, codec.FeaturesEvent)] == \
        frame[["price", "weight"]].to_dict("records")
    assert [e.y_true for e in truths if isinstance(e, codec.TruthEvent)] == frame["delivery_days"].tolist()
    assert [e.row for e in features if isinstance(e, codec.FeaturesEvent)] == list(range(ROWS))
    assert f"published {ROWS}" in done.stderr or "stopped after publishing 300 events" in done.stderr


def test_drift_takes_the_data_file_as_its_reference(config: PipelineConfig, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    table(1000).to_csv(path, index=False)
    options = ("--data", str(path), "--target", "delivery_days")
    assert run_nnmon(config, "features", *options, "--interval", "0").returncode == 0
    drift = subprocess.Popen([NNMON, "drift", *options], env=nnmon_env(config), stderr=subprocess.PIPE,
                             text=True)
    summary = config.logs_dir / ".drift.json"
    try:
        asyncio.run(wait_until(summary.exists, 60, "drift's summary"))
    finally:
        drift.terminate()
        assert drift.wait(30) == 0, drift.stderr.read() if drift.stderr else ""
    written = orjson.loads(summary.read_bytes())
    assert written["reference"] == f"the data file {path}" and written["features"] == ["price", "weight"]
    assert {rule["key"] for rule in written["rules"]} >= {"feature_drift[price]", "feature_drift[weight]",
                                                         "target_drift[y_true]"}


@pytest.mark.parametrize(("content", "message"), [
    ("price,weight\n1.0,2.0\n", "no column delivery_days (--target)"),
    ("price,delivery_days\n1.0,2.0\n2.5,x\n", "row 3 has no number in delivery_days ('x')"),
    ("price,delivery_days\n1.0,2.0\n,3.0\n", "row 3 has no number in price"),
    ("", "is empty"),
    ("price,delivery_days\n", "has no rows"),
    ("city,delivery_days\nOslo,2.0\n", "no column of numbers besides delivery_days"),
])
def test_a_file_that_fails_is_one_line_and_nothing_is_published(config: PipelineConfig, tmp_path: Path,
                                                               content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    done = run_nnmon(config, "features", "--data", str(path), "--target", "delivery_days", "--interval", "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr

    async def exists() -> bool:
        async with open_consumer(config.broker, "nnmon-tests") as consumer:
            return bool(await consumer.stream_exists(config.names.features))

    assert not asyncio.run(exists())


def test_options_that_need_data_say_so(config: PipelineConfig, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    table(10).to_csv(path, index=False)
    for arguments, message in ((["--target", "x"], "--target needs --data"),
                               (["--data", str(path)], "--data needs --target"),
                               (["--data", str(path), "--target", "delivery_days", "--id-column", "order",
                                 "--cycle"], "--cycle with --id-column")):
        done = run_nnmon(config, "features", *arguments)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    done = run_nnmon(config, "up", "--data", str(path), "--target", "delivery_days")
    assert done.returncode == 2 and "not the built-in model's" in done.stderr, done.stderr


def test_up_runs_your_model_on_your_data(config: PipelineConfig, tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LinearRegression

    frame, path = table(), tmp_path / "orders.csv"
    frame.to_csv(path, index=False)
    regressor = LinearRegression().fit(frame[["price", "weight"]].to_numpy(), frame["delivery_days"])
    model = tmp_path / "days.joblib"
    joblib.dump(regressor, model)
    done = run_nnmon(config, "up", "--data", str(path), "--target", "delivery_days", "--id-column", "order",
                     "--model-path", str(model), "--interval", "0", "--count", str(ROWS), "--every", "1",
                     timeout=180)
    assert done.returncode == 0, done.stderr
    csv = pd.read_csv(config.csv_path, dtype={"id": str}).set_index("id").loc[frame["order"]]
    expected = regressor.predict(frame[["price", "weight"]].to_numpy())
    np.testing.assert_allclose(csv["y_pred"], expected, rtol=1e-12)
    np.testing.assert_array_equal(csv["y_true"], frame["delivery_days"])
    summary = orjson.loads((config.logs_dir / ".drift.json").read_bytes())
    assert summary["reference"] == f"the data file {path}"
