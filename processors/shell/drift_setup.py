"""What drift compares the windows with, read at start: the built-in
model's data set (its features, truths and predictions), or a reference
file (CSV or Parquet) with a column per feature (y_true and y_pred used
where it has them). Every problem is one UsageError naming it, before
anything is published."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.drift import DriftReference
from nnmon.processors.core.predictor import builtin_predictor
from nnmon.processors.core.rules import Alerts, Rule, RulesError, default_rules, unwatched
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.data_file import DataFile
from nnmon.processors.shell.drift_log import ALERTS_PER_WINDOW, DriftSettings
from nnmon.processors.shell.quality_setup import QualityOptions, cached, read_table


def builtin_source(model: str) -> str:
    return f"the diabetes data set the built-in {model} model was fitted on"
TARGETS = ("y_true", "y_pred")


def builtin_features() -> tuple[str, ...]:
    """The features nnmon's own `features` publishes (the data set's)."""
    return diabetes().feature_names


def builtin_drift_reference(cache: Path | None = None, model: str = "linear") -> DriftReference:
    """The data set's features and truths, and a built-in model's
    predictions on them (their values kept in `cache`, see `quality_setup.cached`)."""

    def make() -> dict[str, Any]:
        data = diabetes()
        rows = [data.row_features(row) for row in range(len(data.target))]
        values = {name: data.features[:, j].tolist() for j, name in enumerate(data.feature_names)}
        values |= {"y_pred": builtin_predictor(model).predict(rows).tolist(), "y_true": data.target.tolist()}
        return {"features": list(data.feature_names), "values": values}

    def load(saved: dict[str, Any]) -> DriftReference:
        values = {name: np.array(column, dtype=np.float64) for name, column in saved["values"].items()}
        return DriftReference.of_values(builtin_source(model), values, tuple(saved["features"]))

    return cached(cache, make, load, model)


def file_drift_reference(path: Path, features: tuple[str, ...]) -> DriftReference:
    """The reference of a file with a column per feature (and y_true,
    y_pred where it has them): every value a number."""
    import pandas as pd

    frame = read_table(path)
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise UsageError(f"--reference-file {path} has no feature column {', '.join(missing)} "
                         f"(it has {', '.join(map(str, frame.columns)) or 'none'})")
    if not len(frame):
        raise UsageError(f"--reference-file {path} has no rows")
    values = {}
    for name in (*features, *(t for t in TARGETS if t in frame.columns)):
        column = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(column))
        if bad.size:
            raise UsageError(f"--reference-file {path}: row {bad[0] + 1} has no number in {name} "
                             f"({frame[name].iloc[bad[0]]!r})")
        values[name] = column
    return reference_of(f"the file {path}", values, features)


def data_drift_reference(data: DataFile) -> DriftReference:
    """The rows of a data file (`features --data`): its features, and its target as y_true."""
    dataset = data.dataset
    values = {name: dataset.features[:, j] for j, name in enumerate(dataset.feature_names)}
    return reference_of(f"the data file {data.path}", values | {"y_true": dataset.target},
                        dataset.feature_names)


def reference_of(source: str, values: dict[str, np.ndarray], features: tuple[str, ...],
                 chunks: list[Mapping[str, np.ndarray]] | None = None) -> DriftReference:
    try:
        return DriftReference.of_values(source, values, features, chunks)
    except ValueError as error:
        raise UsageError(f"the drift reference ({source}) cannot place its bins: {error}") from None


def drift_settings_with(options: QualityOptions, rules: list[Rule],
                        reference: DriftReference) -> DriftSettings:
    """The settings, drift's rules checked against the reference: each
    column a rules file names is the reference's (a built-in rule on y_pred
    or y_true is left out where the reference has no such column), each
    has a threshold."""
    drift_rules = [rule for rule in rules if rule.on_drift]
    missing = unwatched(drift_rules, reference.columns)
    if missing and options.rules_file is not None:
        raise UsageError(f"rule {missing[0].name!r}: the reference ({reference.source}) has no column "
                         f"{missing[0].column!r} (it has {', '.join(reference.columns)})")
    drift_rules = [rule for rule in drift_rules if rule not in missing]
    settings = DriftSettings(options.window_s, options.lateness_s, tuple(drift_rules), reference)
    for source in settings.sources():
        watching = settings.rules_of(source)
        if len(watching) > ALERTS_PER_WINDOW:
            raise UsageError(f"{len(watching)} drift rules on {source} (one per feature): at most "
                             f"{ALERTS_PER_WINDOW}")
        try:
            Alerts(watching, reference)
        except RulesError as error:
            raise UsageError(str(error)) from None
    return settings


def default_drift(window_s: float = 60.0, lateness_s: float = 30.0) -> DriftSettings:
    """The built-in rules and reference."""
    return drift_settings_with(QualityOptions(window_s, lateness_s), default_rules(),
                               builtin_drift_reference())
