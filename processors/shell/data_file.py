"""Your own data for `nnmon features --data FILE --target COLUMN`: a CSV or
Parquet file read and checked whole before anything is published.

The target is COLUMN; the features are every other column of numbers (a
column without a single number, such as a name, is no feature); with
`--id-column`, the events' ids come from that column. A missing column, a
cell that is not a finite number (in the target or a feature), an id that
is not one or repeats, or an empty file: one UsageError naming the row (as
counted in the file, the header being row 1 of a CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnmon.processors.core.dataset import Dataset
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.quality_setup import read_table
from nnmon.streams.events.codec import ID_PATTERN


@dataclass(frozen=True)
class DataFile:
    path: Path
    dataset: Dataset
    ids: tuple[str, ...] | None  # one per row, from --id-column; None: new ids
    skipped: tuple[str, ...]  # columns with no number: not features


def load_data(path: Path, target: str, id_column: str | None = None) -> DataFile:
    import pandas as pd

    where = f"--data {path}"
    if path.is_file() and path.stat().st_size == 0:
        raise UsageError(f"{where} is empty")
    # A CSV as text: an id stays as written ("007", not 7), an empty cell is
    # no number (and said so), and row numbers are the file's lines.
    frame = read_table(path, "--data", text=True)
    if not len(frame):
        raise UsageError(f"{where} has no rows")
    columns = [str(name) for name in frame.columns]
    frame.columns = columns
    for name, option in ((target, "--target"), (id_column, "--id-column")):
        if name is not None and name not in columns:
            raise UsageError(f"{where} has no column {name} ({option}); it has {', '.join(columns)}")
    first_row = 2 if path.suffix.lower() not in (".parquet", ".pq") else 1  # a CSV's header is row 1

    def numbers(name: str) -> np.ndarray:
        column: np.ndarray = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(column))
        if bad.size:
            raise UsageError(f"{where}: row {bad[0] + first_row} has no number in {name} "
                             f"({frame[name].iloc[bad[0]]!r})")
        return column

    candidates = [name for name in columns if name not in (target, id_column)]
    skipped = tuple(name for name in candidates
                    if pd.to_numeric(frame[name], errors="coerce").notna().sum() == 0)
    features = [name for name in candidates if name not in skipped]
    if not features:
        raise UsageError(f"{where} has no column of numbers besides {target}: no features")
    matrix = np.column_stack([numbers(name) for name in features])
    ids = None
    if id_column is not None:
        if frame[id_column].isna().any():  # (a Parquet file's missing value)
            place = int(np.flatnonzero(frame[id_column].isna().to_numpy())[0])
            raise UsageError(f"{where}: row {place + first_row} has no id in {id_column}")
        ids = tuple(str(value) for value in frame[id_column])
        for place, event_id in enumerate(ids):
            if not ID_PATTERN.fullmatch(event_id):
                raise UsageError(f"{where}: row {place + first_row}: the id {event_id!r} in {id_column} "
                                 f"is not 1-128 characters of [A-Za-z0-9._:-]")
        seen: dict[str, int] = {}
        for place, event_id in enumerate(ids):
            if event_id in seen:
                raise UsageError(f"{where}: row {place + first_row} repeats the id {event_id!r} of row "
                                 f"{seen[event_id] + first_row}")
            seen[event_id] = place
    return DataFile(path, Dataset(tuple(features), matrix, numbers(target)), ids, skipped)
