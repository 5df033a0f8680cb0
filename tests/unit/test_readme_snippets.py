"""The README's code snippets, run as a user would run them (each marked
`<!-- snippet: NAME ... -->` before its code block)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.shell.model_file import load_predictor
from nnmon.streams.events import codec
from nnmon.streams.settings import BrokerSettings, StreamNames
from tests.conftest import delete_streams
from tests.streamtools import read_events

README = Path(__file__).resolve().parents[2] / "README.md"


def snippet(name: str) -> str:
    pattern = rf"<!-- snippet: {re.escape(name)}\b.*?-->\n```python\n(.*?)```"
    found = re.search(pattern, README.read_text(), re.S)
    assert found, f"README has no python snippet {name}"
    return found.group(1)


def test_the_onnx_export_snippet_makes_a_model_nnmon_runs(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", snippet("onnx-export")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr
    predictor = load_predictor(tmp_path / "net.onnx")
    data = diabetes()
    predicted = predictor.predict([data.row_features(row) for row in range(len(data.target))])
    # a network that learned something: far better than predicting the mean
    assert np.abs(predicted - data.target).mean() < 0.8 * np.abs(data.target - data.target.mean()).mean()


def test_the_client_snippet_logs_a_prediction_and_its_truth(broker: BrokerSettings, tmp_path: Path) -> None:
    names = StreamNames(f"test-{uuid.uuid4().hex[:10]}-")
    env = {**os.environ, "NNMON_STREAM_PREFIX": names.prefix, "NNMON_HOST": broker.host,
           "NNMON_PORT": str(broker.port)}
    try:
        done = subprocess.run([sys.executable, "-c", snippet("client")], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        features, = asyncio.run(read_events(broker, names.features, 1))
        prediction, = asyncio.run(read_events(broker, names.y_pred, 1))
        truth, = asyncio.run(read_events(broker, names.y_true, 1))
    finally:
        asyncio.run(delete_streams(broker, names.all()))
    assert isinstance(features, codec.FeaturesEvent) and isinstance(prediction, codec.PredictionEvent)
    assert isinstance(truth, codec.TruthEvent)
    assert features.id == prediction.features_id == truth.id
    assert (features.features["bmi"], prediction.y_pred, prediction.model_version, truth.y_true) == (
        0.06, 187.2, "my-net-v3", 178.0)
