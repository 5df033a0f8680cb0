"""A data file for `features --data`, read and checked whole: ids as
written, every bad cell named by its row (a CSV's lines, header = 1)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nnmon.processors.run.runtime import UsageError
from nnmon.processors.shell.data_file import load_data


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_ids_stay_as_written_and_text_columns_are_no_features(tmp_path: Path) -> None:
    data = load_data(written(tmp_path, "id,city,x,y\n007,Oslo,1.5,2\n7,Lima,2.5,3\n"), "y", "id")
    assert data.ids == ("007", "7") and data.skipped == ("city",)
    assert data.dataset.feature_names == ("x",) and data.dataset.target.tolist() == [2.0, 3.0]


@pytest.mark.parametrize(("text", "message"), [
    ("id,x,y\na,1,2\n,2,3\n", "row 3: the id '' in id is not 1-128 characters"),
    ("id,x,y\na,1,2\na,2,3\n", "row 3 repeats the id 'a' of row 2"),
    ("id,x,y\na,1,2\n\nb,2,3\n", "row 3 has no number in x ('')"),
    ("id,x,y\na,1,2\nb,inf,3\n", "row 3 has no number in x ('inf')"),
])
def test_each_bad_cell_is_named_by_its_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_data(written(tmp_path, text), "y", "id")


def test_a_parquet_file_without_an_id_in_a_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pd.DataFrame({"id": ["a", None], "x": [1.0, 2.0], "y": [3.0, 4.0]}).to_parquet(path)
    with pytest.raises(UsageError, match="row 2 has no id in id"):
        load_data(path, "y", "id")
