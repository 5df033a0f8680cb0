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
