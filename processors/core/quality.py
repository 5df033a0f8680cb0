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

from nnmon.processors.core.exact import ExactSum, add_exactly, exact_square, spread
from nnmon.processors.core.sketch import QuantileSketch

_EPSILON = float(np.finfo(np.float64).eps)
_SUMS = ("error", "absolute", "square", "truth", "truth_square", "percentage")
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
    """Exact sums over joined rows (see `exact`): feed with `add`, combine
    with `merge`; any grouping and order of the same rows gives the same
    figures, to the last digit."""

    __slots__ = ("rows", "error", "absolute", "square", "truth", "truth_square", "percentage",
                 "percentage_rows", "max_error", "sketch")

    def __init__(self) -> None:
        self.rows = 0
        self.error = ExactSum()  # of y_pred - y_true
        self.absolute = ExactSum()
        self.square = ExactSum()
        # The truths and their exact squares, for r2's SS_tot = sum(y^2) - sum(y)^2 / n.
        self.truth = ExactSum()
        self.truth_square = ExactSum()
        self.percentage = ExactSum()  # of |error| / |y_true| where y_true != 0
        self.percentage_rows = 0
        self.max_error = 0.0
        self.sketch = QuantileSketch()

    def add(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Count rows given as two float arrays of one length (finite errors)."""
        if y_true.size == 0:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            error = y_pred - y_true
            absolute = np.abs(error)
            nonzero = y_true != 0
            counted = absolute if nonzero.all() else absolute[nonzero]
            truths = y_true if counted is absolute else y_true[nonzero]
            square, square_error = exact_square(y_true)
            add_exactly(
                (self.error, self.absolute, self.square, self.truth, self.truth_square, self.truth_square,
                 self.percentage),
                (error, absolute, error * error, y_true, square, square_error,
                 counted / np.maximum(np.abs(truths), _EPSILON)))
        self.rows += int(y_true.size)
        self.percentage_rows += int(counted.size)
        self.max_error = max(self.max_error, float(absolute.max()))
        self.sketch.add(absolute)

    def merge(self, other: Quality) -> None:
        """Make this the quality of both sets of rows."""
        self.rows += other.rows
        for name in _SUMS:
            getattr(self, name).merge(getattr(other, name))
        self.percentage_rows += other.percentage_rows
        self.max_error = max(self.max_error, other.max_error)
        self.sketch.merge(other.sketch)

    def figures(self) -> Figures:
        rows = self.rows
        if rows == 0:
            nan = math.nan
            return Figures(0, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0)
        return Figures(
            rows=rows,
            mae=self.absolute.value() / rows,
            rmse=math.sqrt(self.square.value() / rows),
            bias=self.error.value() / rows,
            r2=self._r2(),
            mape=100 * self.percentage.value() / self.percentage_rows if self.percentage_rows else math.nan,
            max_error=self.max_error,
            p50=self.sketch.quantile(0.5),
            p90=self.sketch.quantile(0.9),
            p99=self.sketch.quantile(0.99),
            zero_truths=rows - self.percentage_rows,
        )

    def _r2(self) -> float:
        """scikit-learn's r2_score, with SS_tot computed exactly (the sums
        are exact; it is rounded once)."""
        if self.rows < 2:
            return math.nan
        residual = self.square.value()
        total = spread(self.truth, self.truth_square, self.rows)  # SS_tot = sum(y^2) - sum(y)^2 / n
        if not math.isfinite(total):  # truths beyond what a float squares
            return math.nan
        if total <= 0:
            return 1.0 if residual == 0 else 0.0
        return 1 - residual / total

    def to_state(self) -> dict[str, Any]:
        return {"rows": self.rows, "percentage_rows": self.percentage_rows, "max_error": self.max_error,
                **{name: getattr(self, name).to_state() for name in _SUMS}, "sketch": self.sketch.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Quality:
        quality = cls()
        quality.rows = int(state["rows"])
        quality.percentage_rows = int(state["percentage_rows"])
        quality.max_error = float(state["max_error"])
        for name in _SUMS:
            setattr(quality, name, ExactSum.from_state(state[name]))
        quality.sketch = QuantileSketch.from_state(state["sketch"])
        return quality

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Quality:
        quality = cls()
        quality.add(y_true, y_pred)
        return quality
