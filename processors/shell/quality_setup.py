"""What the quality windows are compared with and alerted on, read from
files at start: the rules file (TOML) and a reference file (CSV or
Parquet), or the built-in model's reference. Every problem is one
UsageError naming it, before anything is published."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import orjson

from nnmon.processors.core.dataset import diabetes
from nnmon.processors.core.predictor import BUILTIN_MODELS, builtin_predictor
from nnmon.processors.core.quality import Quality
from nnmon.processors.core.reference import Reference, chunks_of
from nnmon.processors.core.rules import Alerts, Rule, RulesError, default_rules, parse_rules
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.atomic import write_atomically
from nnmon.processors.shell.windows_log import QualitySettings

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


@dataclass(frozen=True)
class QualityOptions:
    """The quality options as given (see `nnmon metric --help`)."""

    window_s: float = 60.0
    lateness_s: float = 30.0
    rules_file: Path | None = None
    reference_file: Path | None = None
    reference_from: str | None = None  # a point of y_true, as replay's --from-offset
    reference_to: int | None = None  # the last y_true offset of the reference range
    model: str = "linear"  # the built-in model whose quality on its data set is the default reference

    def check(self) -> None:
        check_builtin_model(self.model)
        if not self.window_s > 0:
            raise UsageError(f"--window must be a positive number of seconds, not {self.window_s:g}")
        if not self.lateness_s >= 0:
            raise UsageError(f"--allowed-lateness must be 0 or more seconds, not {self.lateness_s:g}")
        if self.reference_file is not None and self.reference_from is not None:
            raise UsageError("give --reference-file or --reference-from, not both")
        if self.reference_to is not None and self.reference_from is None:
            raise UsageError("--reference-to needs --reference-from")


def check_builtin_model(model: str) -> None:
    """`--model`, as `model`, metric, drift and up take it: a built-in model's name."""
    if model not in BUILTIN_MODELS:
        raise UsageError(f"--model {model}: no such built-in model (there are {', '.join(BUILTIN_MODELS)})")


def load_rules(path: Path | None) -> list[Rule]:
    """The rules of a rules file; the built-in rules without one."""
    if path is None:
        return default_rules()
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise UsageError(f"cannot read --rules {path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"--rules {path} is not valid TOML: {error}") from None
    try:
        return parse_rules(document)
    except RulesError as error:
        raise UsageError(f"--rules {path}: {error}") from None


def builtin_source(model: str) -> str:
    return f"the built-in {model} model on the diabetes data set it was fitted on"


def cached(cache: Path | None, make: Callable[[], dict[str, Any]], load: Callable[[dict[str, Any]], T],
           model: str) -> T:
    """`load(make())`, with what `make` made kept in `cache` (JSON, per
    built-in model and scikit-learn and numpy version) where it is given:
    the built-in references take importing scikit-learn and fitting the
    model, 1.5 s of CPU and 35 MB at every start. A cache that cannot be
    read is made again."""
    key = f"the {model} model, scikit-learn {version('scikit-learn')}, numpy {version('numpy')}"
    if cache is not None:
        try:
            saved = orjson.loads(cache.read_bytes())
            if saved["key"] == key:
                return load(saved)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # made again below
    made = make()
    if cache is not None:
        text = orjson.dumps({"key": key, **made})
        try:
            write_atomically(cache, lambda file: file.write(text), durable=False)
        except OSError:
            pass  # a cache: the next start computes it again
    return load(made)


def builtin_reference(cache: Path | None = None, model: str = "linear") -> Reference:
    """A built-in model's quality on the data set it was fitted on (kept
    in `cache`, see `cached`)."""

    def make() -> dict[str, Any]:
        data = diabetes()
        rows = [data.row_features(row) for row in range(len(data.target))]
        predicted = builtin_predictor(model).predict(rows)
        return {"chunks": [chunk.to_state() for chunk in chunks_of(data.target, predicted)]}

    def load(saved: dict[str, Any]) -> Reference:
        return Reference.of_windows(builtin_source(model),
                                    [Quality.from_state(state) for state in saved["chunks"]], timed=False)

    return cached(cache, make, load, model)


def read_table(path: Path, option: str = "--reference-file", text: bool = False) -> pd.DataFrame:
    """The table of a file given as `option`: CSV, or Parquet by its .parquet / .pq suffix.
    With `text`, a CSV's cells as they are written (no type guessed, no cell
    taken for missing, no line skipped): its rows are the file's lines."""
    import pandas as pd

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if text:
            return pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
        return pd.read_csv(path)
    except (OSError, ValueError, ImportError) as error:
        raise UsageError(f"cannot read {option} {path}: {error}") from None


def file_reference(path: Path) -> Reference:
    """The quality of the rows of a file with columns y_true and y_pred
    (CSV, or Parquet by its .parquet / .pq suffix)."""
    import pandas as pd

    frame = read_table(path)
    missing = [column for column in ("y_true", "y_pred") if column not in frame.columns]
    if missing:
        raise UsageError(f"--reference-file {path} has no column {' or '.join(missing)} "
                         f"(it has {', '.join(map(str, frame.columns)) or 'none'})")
    columns = []
    for column in ("y_true", "y_pred"):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise UsageError(f"--reference-file {path}: row {bad[0] + 1} has no number in {column} "
                             f"({frame[column].iloc[bad[0]]!r})")
        columns.append(values)
    if not columns[0].size:
        raise UsageError(f"--reference-file {path} has no rows")
    return Reference.of_rows(f"the file {path}", columns[0], columns[1])


def checked(rules: list[Rule], reference: Reference) -> tuple[Rule, ...]:
    """The quality rules among `rules` (drift's are the drift processor's),
    each checked (by `Alerts`, as every use checks them) to have a threshold
    with this reference."""
    quality = [rule for rule in rules if not rule.on_drift]
    try:
        Alerts(quality, reference)
    except RulesError as error:
        raise UsageError(str(error)) from None
    return tuple(quality)


def default_quality() -> QualitySettings:
    """Windows of 60 s with 30 s of lateness, the built-in rules and reference."""
    options, reference = QualityOptions(), builtin_reference()
    rules = checked(default_rules(), reference)
    return QualitySettings(options.window_s, options.lateness_s, rules, reference)
