"""The predictor without a broker: the same numbers scikit-learn gives."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression, Ridge

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import Predictor, default_predictor


def rows_of(matrix: np.ndarray, names: tuple[str, ...]) -> list[dict[str, float]]:
    return [dict(zip(names, map(float, row))) for row in matrix]


def test_linear_regression_predicts_exactly_what_scikit_learn_predicts() -> None:
    predictor = default_predictor()
    assert predictor.linear is not None, "the default model takes the direct product"
    data = diabetes()
    wide = np.random.default_rng(1).normal(0, 10, (500, len(data.feature_names)))
    for matrix in (data.features, wide, data.features[:1]):
        rows = rows_of(matrix, data.feature_names)
        assert np.array_equal(predictor.predict(rows), predictor.regressor.predict(matrix))


def test_features_are_taken_in_the_models_order_whatever_the_events_order() -> None:
    predictor = default_predictor()
    data = diabetes()
    shuffled = [dict(reversed(row.items())) for row in rows_of(data.features[:20], data.feature_names)]
    assert np.array_equal(predictor.predict(shuffled), predictor.regressor.predict(data.features[:20]))


def test_other_models_and_multi_output_fall_back_to_their_own_predict() -> None:
    data = diabetes()
    ridge = Predictor(Ridge().fit(data.features, data.target), data.feature_names, "ridge")
    two_outputs = LinearRegression().fit(data.features, np.stack([data.target, -data.target], axis=1))
    wide = Predictor(two_outputs, data.feature_names, "two")
    assert ridge.linear is None and wide.linear is None
    rows = rows_of(data.features[:30], data.feature_names)
    assert np.array_equal(ridge.predict(rows), ridge.regressor.predict(data.features[:30]))
    assert np.array_equal(wide.predict(rows[:1]), two_outputs.predict(data.features[:1]).reshape(-1))


def test_an_overflowing_product_gives_a_non_finite_number_not_an_error() -> None:
    predictor = default_predictor()
    [value] = predictor.predict([{name: 1e308 for name in predictor.feature_names}])
    assert not np.isfinite(value)
