"""A model's quality over a set of joined rows, as a small mergeable value.

`Quality` keeps sums (and a quantile sketch), never the rows: two of them
merge into the quality of all their rows, whatever the order, so windows of
several partitions or replays combine. The figures follow Evidently's
definitions where it has them (README, "Quality over time"):

- mae: mean of |y_pred - y_true|; rmse: square root of the mean of its square;
- bias: mean of y_pred - y_true (positive: the model predicts too high);
- r2: scikit-learn's `r2_score`, 1 - SS_res / SS_tot (1.0 for a perfect
  model on constant truths, 0.0 for an imperfect one; NaN below 2 rows);
- mape: in percent, the mean of |y_pred - y_true| / |y_true| over the rows
  with y_true != 0 (those with y_true = 0 are left out, and counted), each
  |y_true| at least the float epsilon, as in scikit-learn's
  `mean_absolute_percentage_error`;
- max_error, and p50 / p90 / p99 of the absolute error: numpy's default
  (linear) percentiles, within the sketch's RELATIVE_ACCURACY.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nnmon.processors.core.sketch import QuantileSketch

_EPSILON = float(np.finfo(np.float64).eps)
# The figures of a window, in the order of metric_windows.csv's columns.
FIGURES = ("rows", "mae", "rmse", "bias", "r2", "mape", "max_error", "p50", "p90", "p99")


@dataclass(frozen=True)
class Figures:
    rows: int
    mae: float
    rmse: float
    bias: float
    r2: float
    mape: float
    max_error: float
    p50: float
    p90: float
    p99: float
    zero_truths: int  # rows left out of mape: their y_true is 0

    def value(self, figure: str) -> float:
        return float(getattr(self, figure))

    def to_json(self) -> dict[str, Any]:
        """NaN as null: JSON has no NaN."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


class Quality:
    """Sums over joined rows: feed with `add`, combine with `merge`."""

    __slots__ = ("rows", "sum_error", "sum_abs", "sum_square", "max_error", "truth_mean", "truth_m2",
                 "sum_percentage", "percentage_rows", "sketch")

    def __init__(self) -> None:
        self.rows = 0
        self.sum_error = 0.0  # of y_pred - y_true
        self.sum_abs = 0.0
        self.sum_square = 0.0
        self.max_error = 0.0
        # The truths' mean and sum of squared deviations, for r2's SS_tot,
        # merged as Chan, Golub and LeVeque do (no cancellation of big sums).
        self.truth_mean = 0.0
        self.truth_m2 = 0.0
        self.sum_percentage = 0.0  # of |error| / |y_true| where y_true != 0
        self.percentage_rows = 0
        self.sketch = QuantileSketch()

    def add(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Count rows given as two float arrays of one length (finite errors)."""
        rows = int(y_true.size)
        if rows == 0:
            return
        error = y_pred - y_true
        absolute = np.abs(error)
        nonzero = y_true != 0
        other = Quality()
        other.rows = rows
        other.sum_error = float(error.sum())
        other.sum_abs = float(absolute.sum())
        other.sum_square = float(np.dot(error, error))
        other.max_error = float(absolute.max())
        other.truth_mean = float(y_true.mean())
        deviation = y_true - other.truth_mean
        other.truth_m2 = float(np.dot(deviation, deviation))
        if nonzero.all():
            other.sum_percentage = float((absolute / np.maximum(np.abs(y_true), _EPSILON)).sum())
            other.percentage_rows = rows
        else:
            other.sum_percentage = float((absolute[nonzero] / np.maximum(np.abs(y_true[nonzero]),
                                                                         _EPSILON)).sum())
            other.percentage_rows = int(np.count_nonzero(nonzero))
        other.sketch.add(absolute)
        self.merge(other)

    def merge(self, other: Quality) -> None:
        """Make this the quality of both sets of rows."""
        if other.rows == 0:
            return
        rows = self.rows + other.rows
        delta = other.truth_mean - self.truth_mean
        self.truth_m2 += other.truth_m2 + delta * delta * self.rows * other.rows / rows
        self.truth_mean += delta * other.rows / rows
        self.rows = rows
        self.sum_error += other.sum_error
        self.sum_abs += other.sum_abs
        self.sum_square += other.sum_square
        self.max_error = max(self.max_error, other.max_error)
        self.sum_percentage += other.sum_percentage
        self.percentage_rows += other.percentage_rows
        self.sketch.merge(other.sketch)

    def figures(self) -> Figures:
        rows = self.rows
        if rows == 0:
            nan = math.nan
            return Figures(0, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0)
        return Figures(
            rows=rows,
            mae=self.sum_abs / rows,
            rmse=math.sqrt(self.sum_square / rows),
            bias=self.sum_error / rows,
            r2=self._r2(),
            mape=100 * self.sum_percentage / self.percentage_rows if self.percentage_rows else math.nan,
            max_error=self.max_error,
            p50=self.sketch.quantile(0.5),
            p90=self.sketch.quantile(0.9),
            p99=self.sketch.quantile(0.99),
            zero_truths=rows - self.percentage_rows,
        )

    def _r2(self) -> float:
        if self.rows < 2:
            return math.nan
        if self.truth_m2 == 0:
            return 1.0 if self.sum_square == 0 else 0.0
        return 1 - self.sum_square / self.truth_m2

    def to_state(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "sum_error": self.sum_error, "sum_abs": self.sum_abs,
            "sum_square": self.sum_square, "max_error": self.max_error, "truth_mean": self.truth_mean,
            "truth_m2": self.truth_m2, "sum_percentage": self.sum_percentage,
            "percentage_rows": self.percentage_rows, "sketch": self.sketch.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Quality:
        quality = cls()
        quality.rows = int(state["rows"])
        quality.percentage_rows = int(state["percentage_rows"])
        for name in ("sum_error", "sum_abs", "sum_square", "max_error", "truth_mean", "truth_m2",
                     "sum_percentage"):
            setattr(quality, name, float(state[name]))
        quality.sketch = QuantileSketch.from_state(state["sketch"])
        return quality

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Quality:
        quality = cls()
        quality.add(y_true, y_pred)
        return quality
