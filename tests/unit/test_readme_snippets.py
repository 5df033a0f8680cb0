"""The README's code snippets, run as a user would run them (each marked
`<!-- snippet: NAME ... -->` before its code block)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.shell.model_file import load_predictor

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
