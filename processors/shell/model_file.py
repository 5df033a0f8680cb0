"""Loading a model from a file: a joblib-saved scikit-learn regressor, or an
ONNX model (`.onnx`, see `onnx_model`), checked against the events' features
before anything is read. Its version names the file and a hash of its bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import Predictor
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.onnx_model import load_onnx


def load_predictor(path: Path, features: tuple[str, ...] | None = None) -> Predictor:
    """A regressor taking `features` (the diabetes set's unless given, in the
    events' order): ONNX for a `.onnx` file, else joblib."""
    if not path.is_file():
        raise UsageError(f"--model-path {path}: no such file")
    names = diabetes().feature_names if features is None else features
    if path.suffix.lower() == ".onnx":
        return Predictor(load_onnx(path, names), names, version_of(path))
    return _joblib_predictor(path, names)


def version_of(path: Path) -> str:
    """The model version the predictions carry: the file's name and a hash of its bytes."""
    return f"{path.name}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def _joblib_predictor(path: Path, names: tuple[str, ...]) -> Predictor:
    import joblib

    try:
        regressor = joblib.load(path)
    except Exception as error:
        raise UsageError(f"--model-path {path}: not a joblib file ({type(error).__name__})") from None
    if not callable(getattr(regressor, "predict", None)):
        raise UsageError(f"--model-path {path}: {type(regressor).__name__} has no predict()")
    expected = getattr(regressor, "n_features_in_", len(names))
    if expected != len(names):
        raise UsageError(
            f"--model-path {path}: the model expects {expected} features, "
            f"the events carry {len(names)} ({', '.join(names)})"
        )
    fitted_names = getattr(regressor, "feature_names_in_", None)
    if fitted_names is not None:
        names = tuple(str(n) for n in fitted_names)
    return Predictor(regressor, names, version_of(path))
