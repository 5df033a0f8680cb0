"""Drift of columns against a reference, from counts in frozen bins.

The reference's bins are cut once per column, at its quantiles (`BINS`
bins, the outer two open-ended), so every window costs one binning per value
and a comparison of counts, and windows stay comparable over time. (Evidently
re-bins every comparison instead, equal width with Sturges' count over both
samples together: its PSI is not comparable from one window to the next.)
A window's sample of a column is its counts and exact sums per bin
(`core.exact`): two merge by adding, in any grouping, to the last digit, like
the quality windows' sums.

From the counts, per column and window (as NannyML's estimated mode does for
large data):
- `psi`: the population stability index, sum of (q - p) * ln(q / p) over the
  bins, the shares of the reference (p) and the window (q) floored at
  PSI_FLOOR where a bin is empty, as Evidently does; above PSI_DRIFT is drift;
- `ks`: the two-sample Kolmogorov-Smirnov statistic D, the largest gap between
  the two cumulative shares at the bin edges (a lower bound of the exact D);
- `wasserstein`: the area between the two cumulative shares, bin by bin
  (exact from each bin's count and sum of values, but where the two cross
  inside a bin: a lower bound of the exact distance), the outer bins closed
  at the smallest and largest value of both, divided by the reference's
  standard deviation (population): Evidently's normalised Wasserstein
  distance;
- `rows`, `mean` and `std` (population), exact and rounded once.
How close each is to the exact value on the raw samples is measured in
tests/unit/test_drift.py.

Pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmon.processors.core.exact import ExactSum, add_grouped, exact_square, spread

# Ten quantile bins, the classic PSI's deciles: the PSI of a sample of n rows
# drawn from the reference itself is about (BINS - 1) * (1/n + 1/N) (N rows in
# the reference), so more bins make small windows look drifted.
BINS = 10
# A column with fewer rows than this in a window is not judged: its figures
# are written, but it is neither drifted nor not, and rules leave it be. At
# 100 rows a window of the reference's own distribution has a PSI of about
# 0.1 +- 0.04, so 0.2 is drift, not chance.
MIN_ROWS = 100
PSI_FLOOR = 0.0001
PSI_DRIFT = 0.2  # a PSI above this is drift (Evidently's and NannyML's convention; 0.1 a warning)
CHUNKS = 10  # a reference without time is cut in this many runs of rows, as the quality reference

CSV_FIGURES = ("rows", "mean", "std", "psi", "wasserstein", "ks")  # a column's, in drift.csv's order
PER_COLUMN = ("mean", "std", "psi", "wasserstein", "ks")  # a column's figures that rules watch
DRIFT_FIGURES = (*PER_COLUMN, "drifted_share")  # and the window's: the share of features drifted


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

    @property
    def size(self) -> int:
        return int(self.edges.size) + 1

    def of(self, values: np.ndarray) -> np.ndarray:
        """Each value's bin."""
        return np.searchsorted(self.edges, values, side="left")


@dataclass
class Sample:
    """A column's values in a window, as counts and exact sums per bin, the
    exact sum of their squares, and the smallest and largest: merged by adding."""

    counts: np.ndarray  # int64, per bin
    sums: list[ExactSum]  # per bin
    squares: ExactSum = field(default_factory=ExactSum)
    low: float = math.inf
    high: float = -math.inf

    @classmethod
    def empty(cls, bins: int) -> Sample:
        return cls(np.zeros(bins, dtype=np.int64), [ExactSum() for _ in range(bins)])

    @classmethod
    def of(cls, bins: Bins, values: np.ndarray) -> Sample:
        sample = cls.empty(bins.size)
        sample.add(bins, values)
        return sample

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    def add(self, bins: Bins, values: np.ndarray) -> None:
        if values.size == 0:
            return
        where = bins.of(values)
        self.counts += np.bincount(where, minlength=bins.size)
        square, error = exact_square(values)
        groups = np.concatenate((where, np.full(2 * values.size, bins.size)))
        add_grouped([*self.sums, self.squares], groups, np.concatenate((values, square, error)))
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    def merge(self, other: Sample) -> None:
        self.counts = self.counts + other.counts
        for mine, theirs in zip(self.sums, other.sums):
            mine.merge(theirs)
        self.squares.merge(other.squares)
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)

    def total(self) -> ExactSum:
        total = ExactSum()
        for part in self.sums:
            total.merge(part)
        return total

    def to_state(self) -> dict[str, Any]:
        return {"counts": self.counts.tolist(), "sums": [s.to_state() for s in self.sums],
                "squares": self.squares.to_state(), "low": self.low, "high": self.high}

    @classmethod
    def from_state(cls, state: dict[str, Any], bins: Bins) -> Sample:
        counts = np.array(state["counts"], dtype=np.int64)
        if counts.size != bins.size or len(state["sums"]) != bins.size:
            raise ValueError("a drift sample of other bins than the reference's")
        return cls(counts, [ExactSum.from_state(s) for s in state["sums"]],
                   ExactSum.from_state(state["squares"]), float(state["low"]), float(state["high"]))


@dataclass(frozen=True)
class ColumnFigures:
    rows: int
    mean: float
    std: float
    psi: float
    wasserstein: float
    ks: float

    @property
    def judged(self) -> bool:
        return self.rows >= MIN_ROWS

    @property
    def drifted(self) -> bool | None:
        """Whether the column drifted (PSI above PSI_DRIFT); None with too few rows to tell."""
        return self.psi > PSI_DRIFT if self.judged else None

    def value(self, figure: str) -> float:
        return float(getattr(self, figure))


def compare(bins: Bins, reference: Sample, current: Sample) -> ColumnFigures:
    """The figures of `current` against `reference`, in the same bins."""
    rows = current.rows
    if rows == 0:
        nan = math.nan
        return ColumnFigures(0, nan, nan, nan, nan, nan)
    total = current.total()
    mean = total.value() / rows
    std = math.sqrt(spread(total, current.squares, rows) / rows)
    p = reference.counts / reference.rows
    q = current.counts / rows
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

    def area(before: np.ndarray, share: np.ndarray, sample: Sample) -> np.ndarray:
        sums = np.array([part.value() for part in sample.sums])
        under: np.ndarray = before * (ends - starts) + share * ends - sums / sample.rows
        return under

    distance = float(np.sum(np.abs(area(p_before, p, reference) - area(q_before, q, current))))
    wasserstein = distance / bins.std if bins.std > 0 else (0.0 if distance == 0 else math.inf)
    return ColumnFigures(rows, mean, std, psi, ks=ks, wasserstein=wasserstein)


@dataclass(frozen=True)
class DriftFigures:
    """A window's drift: each column's figures, and the share of the
    features (of those judged) that drifted."""

    columns: dict[str, ColumnFigures]
    drifted_share: float  # NaN where no feature is judged (or no feature is in the window)

    def value(self, measure: str) -> float:
        """A figure by measure, as rules read them: `drifted_share`, or a
        column's as `psi[bmi]`; NaN for a column not judged."""
        if measure == "drifted_share":
            return self.drifted_share
        figure, _, column = measure.partition("[")
        found = self.columns.get(column[:-1])
        return found.value(figure) if found is not None and found.judged else math.nan


def figures_of(columns: dict[str, ColumnFigures], features: tuple[str, ...]) -> DriftFigures:
    drifted = [columns[name].drifted for name in features if name in columns]
    counted = [flag for flag in drifted if flag is not None]
    return DriftFigures(columns, sum(counted) / len(counted) if counted else math.nan)


@dataclass(frozen=True)
class DriftReference:
    """The reference's bins and samples per column, its figures against
    itself, and the mean and spread of each figure over its chunks (for a
    rule in standard deviations, NannyML's way)."""

    source: str
    features: tuple[str, ...]  # the columns of the features events, in order
    bins: dict[str, Bins]
    samples: dict[str, Sample]
    figures: DriftFigures
    window_mean: Mapping[str, float]
    window_std: Mapping[str, float]

    @classmethod
    def of_values(cls, source: str, values: Mapping[str, np.ndarray], features: tuple[str, ...],
                  chunks: list[Mapping[str, np.ndarray]] | None = None) -> DriftReference:
        """The reference of these columns' values (the features' and any of
        y_pred and y_true), with `chunks` of it (windows of time) or, without,
        CHUNKS runs of consecutive rows. ValueError naming the column that
        cannot place its bins."""
        bins: dict[str, Bins] = {}
        for name, column in values.items():
            try:
                bins[name] = Bins.of_reference(column)
            except ValueError as error:
                raise ValueError(f"column {name}: {error}") from None
        samples = {name: Sample.of(bins[name], np.asarray(column, dtype=np.float64))
                   for name, column in values.items()}
        whole = figures_of({name: compare(bins[name], samples[name], samples[name]) for name in values},
                           features)
        if chunks is None:
            split = {name: np.array_split(np.asarray(column, dtype=np.float64), CHUNKS)
                     for name, column in values.items()}
            chunks = [{name: split[name][i] for name in values} for i in range(CHUNKS)]
        per_chunk = [figures_of({name: compare(bins[name], samples[name], Sample.of(bins[name], part))
                                 for name, part in chunk.items() if name in bins}, features)
                     for chunk in chunks]
        mean, std = {}, {}
        for measure in [*(f"{f}[{name}]" for name in values for f in PER_COLUMN), "drifted_share"]:
            found = np.array([figures.value(measure) for figures in per_chunk], dtype=np.float64)
            found = found[np.isfinite(found)]
            mean[measure] = float(found.mean()) if found.size else math.nan
            std[measure] = float(found.std()) if found.size else math.nan
        return cls(source, features, bins, samples, whole, mean, std)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.bins)

    def value(self, measure: str) -> float:
        """The reference's own figure (against itself: a PSI of 0)."""
        return self.figures.value(measure)


class Columns:
    """A window's samples of some of the reference's columns: the value
    drift's windows hold. Rows come as a matrix, one column per name."""

    __slots__ = ("reference", "names", "samples")

    def __init__(self, reference: DriftReference, names: tuple[str, ...]) -> None:
        self.reference = reference
        self.names = names
        self.samples = {name: Sample.empty(reference.bins[name].size) for name in names}

    def add(self, *columns: np.ndarray) -> None:
        """Count rows given as one float matrix of shape (rows, len(names))."""
        (matrix,) = columns
        if matrix.shape[0] == 0:
            return
        # All columns' bins and sums in one exact pass: column j's bin b is
        # sum j * width + b, its squares j * width + width - 1.
        bins = [self.reference.bins[name] for name in self.names]
        width = max(b.size for b in bins) + 1
        values = matrix.T
        groups = np.stack([b.of(column) + j * width for j, (b, column) in enumerate(zip(bins, values))])
        square, error = exact_square(values)
        squares = (np.arange(len(bins)) * width + width - 1)[:, None].repeat(values.shape[1], axis=1)
        flat: list[ExactSum] = []
        for name in self.names:
            sample = self.samples[name]
            flat.extend(sample.sums)
            flat.extend(ExactSum() for _ in range(width - 1 - len(sample.sums)))  # unused places
            flat.append(sample.squares)
        add_grouped(flat, np.concatenate((groups.ravel(), squares.ravel(), squares.ravel())),
                    np.concatenate((values.ravel(), square.ravel(), error.ravel())))
        counts = np.bincount(groups.ravel(), minlength=width * len(bins)).reshape(len(bins), width)
        lows, highs = values.min(axis=1).tolist(), values.max(axis=1).tolist()
        for j, (name, b) in enumerate(zip(self.names, bins)):
            sample = self.samples[name]
            sample.counts += counts[j, :b.size]
            sample.low, sample.high = min(sample.low, lows[j]), max(sample.high, highs[j])

    def merge(self, other: Columns) -> None:
        for name, sample in other.samples.items():
            self.samples[name].merge(sample)

    def figures(self) -> DriftFigures:
        reference = self.reference
        return figures_of({name: compare(reference.bins[name], reference.samples[name], sample)
                           for name, sample in self.samples.items()}, reference.features)

    def to_state(self) -> dict[str, Any]:
        return {name: sample.to_state() for name, sample in self.samples.items()}

    def load(self, state: dict[str, Any]) -> Columns:
        """Columns of the same names, as `state` describes them."""
        columns = Columns(self.reference, self.names)
        if sorted(state) != sorted(self.names):
            raise ValueError("a drift window of other columns than these")
        columns.samples = {name: Sample.from_state(state[name], self.reference.bins[name])
                           for name in self.names}
        return columns
