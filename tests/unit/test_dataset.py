"""Unit tests for nnmon.processors.core.dataset: the diabetes data set and the row order."""

from __future__ import annotations

import numpy as np

from nnmon.processors.core.dataset import diabetes, row_order


def test_diabetes_shape() -> None:
    data = diabetes()
    assert data.features.shape == (442, 10)
    assert data.target.shape == (442,)
    assert len(data.feature_names) == 10
    assert len(set(data.feature_names)) == 10
    assert np.isfinite(data.features).all() and np.isfinite(data.target).all()


def test_row_features_names_the_values() -> None:
    data = diabetes()
    row = data.row_features(3)
    assert list(row) == list(data.feature_names)
    assert list(row.values()) == data.features[3].tolist()


def test_row_order_is_a_permutation() -> None:
    for rows in [1, 10, 442]:
        order = row_order(rows, seed=7)
        assert sorted(order.tolist()) == list(range(rows))


def test_row_order_is_deterministic_per_seed() -> None:
    assert row_order(442, 1).tolist() == row_order(442, 1).tolist()


def test_row_order_differs_between_seeds() -> None:
    orders = {tuple(row_order(442, seed).tolist()) for seed in range(5)}
    assert len(orders) == 5
