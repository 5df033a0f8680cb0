"""Monitoring a model of one's own: `nnmon up` with `--model-path net.onnx`
(a small network exported by skl2onnx), its predictions checked against
onnxruntime's own on the same rows, through to metric's CSV; and with the
built-in network (`--model mlp`), judged against its own references."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime
import orjson
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.neural_network import MLPRegressor

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import builtin_predictor, default_predictor
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.model_file import version_of
from nnmon.streams.events import codec
from tests.streamtools import NNMON, nnmon_env, read_events, run_nnmon

EVENTS = 400


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_up_with_an_onnx_network_predicts_what_onnxruntime_does(config: PipelineConfig,
                                                                 tmp_path: Path) -> None:
    data = diabetes()
    mlp = MLPRegressor(hidden_layer_sizes=(16, 8), max_iter=200, random_state=0)
    mlp.fit(data.features, data.target)
    path = tmp_path / "net.onnx"
    path.write_bytes(convert_sklearn(mlp, initial_types=[("input", FloatTensorType([None, 10]))])
                     .SerializeToString())
    env = nnmon_env(config) | {"NNMON_MODEL_PATH": str(path)}
    done = subprocess.run([NNMON, "up", "--count", str(EVENTS), "--interval", "0", "--every", "1"], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr

    features = asyncio.run(read_events(config.broker, config.names.features, EVENTS))
    predictions = asyncio.run(read_events(config.broker, config.names.y_pred, EVENTS))
    assert all(isinstance(f, codec.FeaturesEvent) for f in features)
    matrix = np.array([[f.features[name] for name in data.feature_names] for f in features
                       if isinstance(f, codec.FeaturesEvent)], dtype=np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_says = session.run(None, {"input": matrix})[0].reshape(-1).tolist()
    expected = dict(zip((f.id for f in features), onnx_says))
    by_features = {p.features_id: p for p in predictions if isinstance(p, codec.PredictionEvent)}
    assert {i: p.y_pred for i, p in by_features.items()} == expected
    assert {p.model_version for p in by_features.values()} == {version_of(path)}

    csv = pd.read_csv(config.csv_path, dtype={"id": str})
    assert len(csv) == EVENTS and csv["id"].is_unique
    assert dict(zip(csv["id"], csv["y_pred"])) == expected
    truths = {f.id: data.target[f.row] for f in features if isinstance(f, codec.FeaturesEvent)}
    np.testing.assert_array_equal(csv["absolute_error"], [abs(truths[i] - expected[i]) for i in csv["id"]])


def test_up_with_the_built_in_network_predicts_and_is_judged_by_it(config: PipelineConfig) -> None:
    done = run_nnmon(config, "up", "--model", "mlp", "--count", str(EVENTS), "--interval", "0",
                     "--every", "1", timeout=180)
    assert done.returncode == 0, done.stderr
    network = builtin_predictor("mlp")
    features = [f for f in asyncio.run(read_events(config.broker, config.names.features, EVENTS))
                if isinstance(f, codec.FeaturesEvent)]
    expected = dict(zip((f.id for f in features), network.predict([f.features for f in features]).tolist()))
    csv = pd.read_csv(config.csv_path, dtype={"id": str})
    assert len(csv) == EVENTS and dict(zip(csv["id"], csv["y_pred"])) == expected
    predictions = asyncio.run(read_events(config.broker, config.names.y_pred, EVENTS))
    assert {p.model_version for p in predictions if isinstance(p, codec.PredictionEvent)} == {network.version}
    assert network.version.startswith("mlp-diabetes@") and network.version != default_predictor().version
    # metric and drift compare with the network's own quality and predictions on the data set
    data = diabetes()
    in_sample = np.abs(network.predict([data.row_features(r) for r in range(len(data.target))]) - data.target)
    quality = orjson.loads((config.logs_dir / ".quality.json").read_bytes())
    assert "mlp" in quality["reference"]["source"]
    assert quality["reference"]["figures"]["mae"] == pytest.approx(in_sample.mean(), rel=1e-12)
    assert "mlp" in orjson.loads((config.logs_dir / ".drift.json").read_bytes())["reference"]


def test_an_unknown_built_in_model_is_one_line_and_status_2(config: PipelineConfig) -> None:
    for command in ("model", "metric", "up"):
        done = run_nnmon(config, command, "--model", "transformer")
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [line for line in done.stderr.strip().splitlines()
                                                    if "--model transformer: no such built-in model" in line]
