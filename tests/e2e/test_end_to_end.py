"""`nnmon up --count 50 --interval 0`: the whole pipeline as a user runs it."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
from PIL import Image

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import default_predictor
from nnmon.processors.core.rows import HEADER
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.drawing import ROWS_KEY
from nnmon.streams.events import codec
from tests.streamtools import read_events, run_nnmon


def test_up_with_a_count_makes_the_csv_and_the_png_then_exits(config: PipelineConfig) -> None:
    done = run_nnmon(config, "up", "--count", "50", "--interval", "0", "--timeout", "90")
    assert done.returncode == 0, done.stderr

    assert config.csv_path.read_text().startswith(HEADER)
    rows = pd.read_csv(config.csv_path, dtype={"id": str})
    assert len(rows) == 50 and rows["id"].is_unique

    features = asyncio.run(read_events(config.broker, config.names.features, 50))
    assert all(isinstance(f, codec.FeaturesEvent) for f in features)
    row_of = {f.id: f.row for f in features if isinstance(f, codec.FeaturesEvent)}
    assert set(rows["id"]) == set(row_of)

    data = diabetes()
    dataset_rows = [row_of[i] for i in rows["id"]]
    expected = default_predictor().regressor.predict(data.features[dataset_rows])
    np.testing.assert_allclose(rows["y_pred"], expected, rtol=1e-12)
    np.testing.assert_array_equal(rows["y_true"], data.target[dataset_rows])
    np.testing.assert_allclose(rows["absolute_error"], np.abs(rows["y_true"] - rows["y_pred"]))

    with Image.open(config.png_path) as png:
        png.load()  # decodes the whole image
        assert png.format == "PNG" and png.size[0] > 100 and png.size[1] > 100
        assert int(png.text[ROWS_KEY]) == 50  # type: ignore[attr-defined]


def test_up_refuses_a_negative_interval_with_one_clear_line(config: PipelineConfig) -> None:
    done = run_nnmon(config, "up", "--interval", "-1")
    assert done.returncode == 2
    assert "--interval" in done.stderr and "Traceback" not in done.stderr
