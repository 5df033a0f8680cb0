"""Drift of one column against a reference, from counts in frozen bins.

The reference's bins are cut once, at its quantiles (`BINS` bins, the outer
two open-ended), so every window costs one binning per value and a
comparison of counts, and windows stay comparable over time. A window's
counts merge by adding them, like the quality windows' sums.

From the counts, per window (as NannyML's estimated mode does for large data):
- `psi`: the population stability index, sum of (q - p) * ln(q / p) over the
  bins, the shares of the reference (p) and the window (q) floored at
  PSI_FLOOR where a bin is empty, as Evidently does;
- `ks`: the two-sample Kolmogorov-Smirnov statistic D, the largest gap between
  the two cumulative shares at the bin edges (a lower bound of the exact D);
- `wasserstein`: the area between the two cumulative shares, bin by bin
  (exact from each bin's count and sum of values, but where the two cross
  inside a bin: a lower bound of the exact distance), the outer bins closed
  at the smallest and largest value of both, divided by the reference's
  standard deviation (population): Evidently's normalised Wasserstein
  distance.
How close each is to the exact value on the raw samples is measured in
tests/unit/test_drift.py.

Pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 20
PSI_FLOOR = 0.0001


@dataclass(frozen=True)
class Bins:
    """Frozen bin edges of a reference column, and what the measures need of it."""

    edges: np.ndarray  # inner edges, increasing: bin i holds edges[i-1] < x <= edges[i]
    low: float  # the reference's minimum and maximum, closing the outer bins
    high: float
    std: float  # the reference's population standard deviation

    @classmethod
    def of_reference(cls, values: np.ndarray, bins: int = BINS) -> Bins:
        """Quantile bins of a reference column; ValueError when it cannot give them."""
        values = np.asarray(values, dtype=np.float64)
        if values.size < 2 * bins:
            raise ValueError(f"{values.size} values are too few to place {bins} bins (at least {2 * bins})")
        if not np.isfinite(values).all():
            raise ValueError("the values are not all finite numbers")
        inner = np.unique(np.quantile(values, np.arange(1, bins) / bins))
        return cls(inner, float(values.min()), float(values.max()), float(values.std()))

    def to_state(self) -> dict[str, Any]:
        return {"edges": self.edges.tolist(), "low": self.low, "high": self.high, "std": self.std}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Bins:
        return cls(np.array(state["edges"], dtype=np.float64), float(state["low"]), float(state["high"]),
                   float(state["std"]))


@dataclass(frozen=True)
class Drift:
    psi: float
    ks: float
    wasserstein: float


@dataclass
class Binned:
    """A sample as counts and sums of values per bin: merged by adding."""

    counts: np.ndarray
    sums: np.ndarray
    low: float  # its smallest and largest value
    high: float

    @classmethod
    def of(cls, bins: Bins, values: np.ndarray) -> Binned:
        where = np.searchsorted(bins.edges, values, side="left")
        size = bins.edges.size + 1
        return cls(np.bincount(where, minlength=size), np.bincount(where, weights=values, minlength=size),
                   float(values.min()) if values.size else math.inf,
                   float(values.max()) if values.size else -math.inf)

    def merge(self, other: Binned) -> None:
        self.counts = self.counts + other.counts
        self.sums = self.sums + other.sums
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)


def compare(bins: Bins, reference: Binned, current: Binned) -> Drift:
    """The drift of `current` against `reference`, in the same bins."""
    p = reference.counts / reference.counts.sum()
    q = current.counts / current.counts.sum() if current.counts.sum() else np.zeros_like(p)
    p_floor, q_floor = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    psi = float(np.sum((q_floor - p_floor) * np.log(q_floor / p_floor)))
    p_before, q_before = np.cumsum(p) - p, np.cumsum(q) - q  # shares below each bin
    ks = float(np.max(np.abs(p_before - q_before)))
    # The area under each cumulative share across a bin (a, b] is exactly
    # (share below a) * (b - a) + (share in it) * b - (sum of its values) / n:
    # the outer bins closed at the smallest and largest value of both. Their
    # difference, bin by bin, is the Wasserstein distance unless the two
    # cross inside a bin.
    low, high = min(reference.low, current.low), max(reference.high, current.high)
    starts = np.concatenate(([low], bins.edges))
    ends = np.concatenate((bins.edges, [high]))

    def area(before: np.ndarray, share: np.ndarray, sums: np.ndarray, total: float) -> np.ndarray:
        under: np.ndarray = before * (ends - starts) + share * ends - (sums / total if total else 0.0)
        return under

    gaps = area(p_before, p, reference.sums, reference.counts.sum()) - area(
        q_before, q, current.sums, current.counts.sum())
    distance = float(np.sum(np.abs(gaps)))
    wasserstein = distance / bins.std if bins.std > 0 else (0.0 if distance == 0 else math.inf)
    return Drift(psi, ks, wasserstein)
