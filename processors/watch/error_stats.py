"""Summary figures of the metric log's absolute errors, kept up to date as
rows arrive: totals for MAE and RMSE, a histogram, and the recent rows with
rolling MAE and RMSE. Pure: rows in, numbers out."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nnmon.processors.core.histogram import ErrorHistogram
from nnmon.processors.watch.csv_tail import Row
from nnmon.streams.events.ids import id_time_ms


@dataclass
class ErrorStats:
    window: int = 100  # rows in the rolling MAE and RMSE
    recent_size: int = 500  # rows drawn over time
    total_squares: float = 0.0
    histogram: ErrorHistogram = field(default_factory=ErrorHistogram)
    # (event time in ms, error): the recent rows, plus the window before the
    # oldest of them so its rolling figures are whole.
    _recent: deque[tuple[int, float]] = field(default_factory=deque)

    def add(self, rows: Iterable[Row]) -> None:
        errors = []
        for row in rows:
            error = row.absolute_error
            errors.append(error)
            self.total_squares += error * error
            self._recent.append((_row_time_ms(row.id), error))
        self.histogram.add(errors)  # which keeps the count and the total
        while len(self._recent) > self.recent_size + self.window - 1:
            self._recent.popleft()

    @property
    def count(self) -> int:
        return self.histogram.count

    @property
    def total(self) -> float:
        return self.histogram.total

    @property
    def mae(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def rmse(self) -> float | None:
        # Infinite when a square overflowed (an error beyond 1e154).
        return math.sqrt(self.total_squares / self.count) if self.count else None

    @property
    def last_row_ms(self) -> int | None:
        return self._recent[-1][0] if self._recent else None

    def recent(self) -> list[dict[str, float]]:
        """The recent rows, oldest first: t (ms), error, and the MAE and RMSE
        of the `window` rows up to and including each."""
        points = list(self._recent)
        shown = []
        for i in range(max(len(points) - self.recent_size, 0), len(points)):
            # Summed afresh per point (fsum, exact): running sums would let
            # one huge error swallow the small ones long after it left.
            window = [error for _, error in points[max(i + 1 - self.window, 0):i + 1]]
            shown.append({
                "t": points[i][0],
                "error": points[i][1],
                "mae": math.fsum(window) / len(window),
                "rmse": _root_mean_square(window),
            })
        return shown

    def histogram_bins(self) -> dict[str, Any]:
        width = self.histogram.width
        return {"width": width,
                "bins": [{"low": low, "high": low + width, "count": n} for low, n in self.histogram.bins()]}


def _row_time_ms(event_id: str) -> int:
    """When the row's event was made: nnmon's ids are UUIDv7, which carry it;
    for any other id (the codec accepts other shapes), now."""
    try:
        return id_time_ms(event_id)
    except ValueError:
        return time.time_ns() // 1_000_000


def _root_mean_square(errors: list[float]) -> float:
    try:
        return math.sqrt(math.fsum(e * e for e in errors) / len(errors))
    except OverflowError:
        return math.inf
