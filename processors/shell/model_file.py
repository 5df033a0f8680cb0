"""Loading a model from a file: a joblib-saved scikit-learn regressor, checked
against the events' features before anything is read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import Predictor
from nnmon.processors.run.runtime import UsageError


def load_predictor(path: Path) -> Predictor:
    """A joblib-saved scikit-learn regressor taking the diabetes features."""
    import joblib

    if not path.is_file():
        raise UsageError(f"--model-path {path}: no such file")
    try:
        regressor = joblib.load(path)
    except Exception as error:
        raise UsageError(f"--model-path {path}: not a joblib file ({type(error).__name__})") from None
    names = diabetes().feature_names
    if not callable(getattr(regressor, "predict", None)):
        raise UsageError(f"--model-path {path}: {type(regressor).__name__} has no predict()")
    expected = getattr(regressor, "n_features_in_", len(names))
    if expected != len(names):
        raise UsageError(
            f"--model-path {path}: the model expects {expected} features, "
            f"the diabetes events carry {len(names)} ({', '.join(names)})"
        )
    fitted_names = getattr(regressor, "feature_names_in_", None)
    if fitted_names is not None:
        names = tuple(str(n) for n in fitted_names)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return Predictor(regressor, names, f"{path.name}@{digest}")
