"""The reference quality that windows are compared with.

A reference is the quality of a set of rows the model is expected to do as
well on (the data it was fitted on, a stretch of history, a file), in all,
and per window of it: the spread of a figure over the reference's windows
is what a rule "k standard deviations" measures against, as NannyML's
default thresholds do (mean of the reference chunks +- 3 standard
deviations, population). A reference without time (a file, the data set) is
cut into CHUNKS windows of consecutive rows, NannyML's default chunk count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmon.processors.core.quality import FIGURES, Figures, Quality

CHUNKS = 10


@dataclass(frozen=True)
class Reference:
    source: str  # what it was computed on, in words
    figures: Figures  # over all its rows
    window_mean: dict[str, float]  # of each figure over its windows
    window_std: dict[str, float]  # population standard deviation over its windows
    timed: bool  # its windows are windows of time: `rows` per window means something

    @classmethod
    def of_windows(cls, source: str, windows: list[Quality], timed: bool) -> Reference:
        """The reference of these windows' rows (empty windows left out)."""
        windows = [w for w in windows if w.rows]
        if not windows:
            raise ValueError(f"the reference ({source}) has no rows")
        whole = Quality()
        for window in windows:
            whole.merge(window)
        per_window = [w.figures() for w in windows]
        mean, std = {}, {}
        for figure in FIGURES:
            values = np.array([f.value(figure) for f in per_window], dtype=np.float64)
            values = values[np.isfinite(values)]
            mean[figure] = float(values.mean()) if values.size else math.nan
            std[figure] = float(values.std()) if values.size else math.nan
        return cls(source, whole.figures(), mean, std, timed)

    @classmethod
    def of_rows(cls, source: str, y_true: np.ndarray, y_pred: np.ndarray) -> Reference:
        """The reference of rows without time, cut in CHUNKS runs of rows."""
        if y_true.size == 0:
            raise ValueError(f"the reference ({source}) has no rows")
        return cls.of_windows(source, chunks_of(y_true, y_pred), timed=False)

    def value(self, figure: str) -> float:
        """The reference's figure; for `rows`, the mean rows per window
        (NaN for a reference without time: its chunks are no windows)."""
        if figure == "rows":
            return self.window_mean["rows"] if self.timed else math.nan
        return self.figures.value(figure)

    def to_json(self) -> dict[str, Any]:
        nan_free = {k: None if math.isnan(v) else v for k, v in self.window_std.items()}
        return {"source": self.source, "figures": self.figures.to_json(), "window_std": nan_free}


def chunks_of(y_true: np.ndarray, y_pred: np.ndarray) -> list[Quality]:
    """Rows without time as CHUNKS runs of consecutive rows, each one's quality."""
    count = min(CHUNKS, y_true.size)
    return [Quality.of(t, p) for t, p in zip(np.array_split(y_true, count), np.array_split(y_pred, count))]
