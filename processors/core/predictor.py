"""A fitted regressor with the feature order it expects, and the built-in ones.

Pure: features in, predictions out (scikit-learn's own predict, or the same
product computed at once for a LinearRegression).
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmon.processors.core.dataset import diabetes


@dataclass(frozen=True)
class Predictor:
    """A fitted regressor with the feature order it expects."""

    regressor: Any
    feature_names: tuple[str, ...]
    version: str

    @functools.cached_property
    def feature_set(self) -> frozenset[str]:
        return frozenset(self.feature_names)

    @functools.cached_property
    def linear(self) -> tuple[np.ndarray, float] | None:
        """The coefficients and intercept of a single-output LinearRegression,
        else None. Its `predict` checks its input for 100 us a call: at 1,000
        events/s, a call per event, that was 14% of model's time. The same
        product is exact: scikit-learn computes `X @ coef_ + intercept_`."""
        from sklearn.linear_model import LinearRegression

        if type(self.regressor) is not LinearRegression or np.ndim(self.regressor.coef_) != 1:
            return None
        return np.asarray(self.regressor.coef_, dtype=np.float64), float(self.regressor.intercept_)

    def predict(self, rows: list[dict[str, float]]) -> np.ndarray:
        in_order = operator.itemgetter(*self.feature_names)
        matrix = np.array([in_order(row) for row in rows], dtype=np.float64).reshape(len(rows), -1)
        if self.linear is not None:
            coefficients, intercept = self.linear
            with np.errstate(all="ignore"):  # an overflow is rejected by the caller
                predicted: np.ndarray = matrix @ coefficients + intercept
            return predicted
        return np.asarray(self.regressor.predict(matrix), dtype=np.float64).reshape(-1)


def _linear() -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _mlp() -> Any:
    """A small network: two hidden layers, inputs and target standardised
    (without, the raw target of 25 to 346 keeps adam from converging).
    Deterministic: a fixed seed, full-batch L-BFGS."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    network = MLPRegressor(hidden_layer_sizes=(16, 8), solver="lbfgs", alpha=1.0, max_iter=500,
                           random_state=0)
    return TransformedTargetRegressor(make_pipeline(StandardScaler(), network), transformer=StandardScaler())


# The built-in models (`nnmon model --model NAME`), each fitted on the whole
# diabetes set, by the name their version starts with.
BUILTIN_MODELS: dict[str, tuple[str, Callable[[], Any]]] = {
    "linear": ("linear-regression-diabetes", _linear),
    "mlp": ("mlp-diabetes", _mlp),
}


@functools.lru_cache(maxsize=len(BUILTIN_MODELS))
def builtin_predictor(model: str = "linear") -> Predictor:
    """A built-in model fitted on the whole diabetes set. Its version: its
    name and a hash of its predictions on that set (what it computes, not
    how scikit-learn stores it)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    name, make = BUILTIN_MODELS[model]
    data = diabetes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter bounds the fit: the same each time
        regressor = make().fit(data.features, data.target)
    predicted = np.asarray(regressor.predict(data.features), dtype=np.float64)
    digest = hashlib.sha256(predicted.tobytes()).hexdigest()[:12]
    return Predictor(regressor, data.feature_names, f"{name}@{digest}")


def default_predictor() -> Predictor:
    """LinearRegression fitted on the whole diabetes set: deterministic."""
    return builtin_predictor("linear")
