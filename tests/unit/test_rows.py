"""Unit tests for nnmon.processors.core.rows: the metric log's CSV row format."""

from __future__ import annotations

import io
import math

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from nnmon.processors.core.join import Pair
from nnmon.processors.core.rows import HEADER, Rows, format_rows

PAIRS = [
    Pair("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", 151.0, 0.1 + 0.2),
    Pair("b", 1 / 3, 2 / 3),
    Pair("c", -1e-300, 1.7976931348623157e308),
    Pair("d", 5e-324, 0.0),
    Pair("e", 123456789.123456789, -0.0),
]


def split_rows(text: str) -> list[list[str]]:
    assert text.endswith("\n")
    return [line.split(",") for line in text[:-1].split("\n")]


def test_header() -> None:
    assert HEADER == "id,y_true,y_pred,absolute_error\n"


def test_no_pairs_no_text() -> None:
    assert format_rows(Rows.of([])) == ""


def test_one_line_per_pair_with_four_fields() -> None:
    rows = split_rows(format_rows(Rows.of(PAIRS)))
    assert len(rows) == len(PAIRS)
    assert all(len(fields) == 4 for fields in rows)
    assert [fields[0] for fields in rows] == [p.id for p in PAIRS]


def test_floats_read_back_exactly() -> None:
    for pair, (_, y_true, y_pred, error) in zip(PAIRS, split_rows(format_rows(Rows.of(PAIRS)))):
        assert float(y_true) == pair.y_true
        assert float(y_pred) == pair.y_pred
        assert float(error) == abs(pair.y_true - pair.y_pred)
        assert math.copysign(1.0, float(y_pred)) == math.copysign(1.0, pair.y_pred)


def test_pandas_reads_the_columns() -> None:
    frame = pd.read_csv(io.StringIO(HEADER + format_rows(Rows.of(PAIRS))), dtype={"id": str})
    assert list(frame.columns) == ["id", "y_true", "y_pred", "absolute_error"]
    assert frame["id"].tolist() == [p.id for p in PAIRS]
    assert frame["y_true"].tolist() == [p.y_true for p in PAIRS]
    assert frame["y_pred"].tolist() == [p.y_pred for p in PAIRS]
    assert frame["absolute_error"].tolist() == [abs(p.y_true - p.y_pred) for p in PAIRS]


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_each_float_is_written_as_repr_writes_it(values: list[float]) -> None:
    pairs = [Pair(f"id{i}", value, 1.0) for i, value in enumerate(values)]
    expected = "".join(f"{p.id},{p.y_true!r},{p.y_pred!r},{p.absolute_error!r}\n" for p in pairs)
    assert format_rows(Rows.of(pairs)) == expected


def test_tiny_and_non_finite_floats_amid_ordinary_ones() -> None:
    values = [151.0, 1e-05, 2.5e-07, 0.0001, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1e16, 0.1 + 0.2]
    pairs = [Pair(str(i), value, -value) for i, value in enumerate(values)]
    expected = "".join(f"{p.id},{p.y_true!r},{p.y_pred!r},{p.absolute_error!r}\n" for p in pairs)
    assert format_rows(Rows.of(pairs)) == expected


@given(st.lists(st.tuples(st.floats(), st.floats()), max_size=50))
def test_rows_joined_at_once_have_the_errors_of_pairs(values: list[tuple[float, float]]) -> None:
    pairs = [Pair(f"id{i}", y_true, y_pred) for i, (y_true, y_pred) in enumerate(values)]
    joined = Rows.joined([p.id for p in pairs], [p.y_true for p in pairs], [p.y_pred for p in pairs])
    assert format_rows(joined) == format_rows(Rows.of(pairs))
    assert len(joined) == len(pairs)
