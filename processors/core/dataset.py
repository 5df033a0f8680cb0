"""scikit-learn's diabetes data set: 442 rows, 10 named features, a target."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Dataset:
    feature_names: tuple[str, ...]
    features: np.ndarray  # shape (rows, features), float64
    target: np.ndarray  # shape (rows,), float64

    def row_features(self, row: int) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.feature_names, self.features[row])}


@lru_cache(maxsize=1)
def diabetes() -> Dataset:
    # load_diabetes reads a file shipped inside scikit-learn: no download.
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return Dataset(
        tuple(bunch.feature_names),
        np.asarray(bunch.data, dtype=np.float64),
        np.asarray(bunch.target, dtype=np.float64),
    )


def row_order(rows: int, seed: int) -> np.ndarray:
    """The order in which `features` cycles through the rows for `seed`."""
    return np.random.default_rng(seed).permutation(rows)


def cycled_rows(rows: int, seed: int) -> Iterator[int]:
    order = row_order(rows, seed)
    while True:
        yield from (int(row) for row in order)


# The demo's concept drift (`features --concept-drift-after`): the world
# changes under the model while its inputs do not. Every target becomes
# DRIFT_SCALE * y + DRIFT_SHIFT, so the built-in model's MAE grows from about
# 43.3 to 74.1 (RMSE from 53.5 to 92.9): past the default alert thresholds, 1.2 times the reference.
DRIFT_SCALE = 1.25
DRIFT_SHIFT = 25.0


def drifted_target(y_true: float) -> float:
    return DRIFT_SCALE * y_true + DRIFT_SHIFT


# The demo's covariate drift (`features --covariate-drift-after`): the inputs
# move away from what the model was fitted on. Every value of these features
# grows by its column's population standard deviation in the data set, so
# their PSI rises well past 0.2, the built-in model's predictions move with
# them, and the other features stay as they were.
COVARIATE_DRIFTED = ("bmi", "s5")


@dataclass(frozen=True)
class DemoDrift:
    """From which event on (0 = the first) the demo's drifts apply; None: never."""

    concept_after: int | None = None
    covariate_after: int | None = None

    def at(self, event: int) -> tuple[bool, bool]:
        """Whether event number `event` (0-based) has its truth drifted, its features drifted."""
        return (self.concept_after is not None and event >= self.concept_after,
                self.covariate_after is not None and event >= self.covariate_after)


def drifted_features(data: Dataset, row: int) -> dict[str, float]:
    """A row's features with COVARIATE_DRIFTED shifted by one standard deviation."""
    features = data.row_features(row)
    for name in COVARIATE_DRIFTED:
        features[name] += float(data.features[:, data.feature_names.index(name)].std())
    return features


NO_DRIFT = DemoDrift()
