"""The quality accumulators, windows and rules against implementations we
did not write: scikit-learn's metrics and numpy's percentiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
)

from nnmon.processors.core.exact import ExactSum
from nnmon.processors.core.quality import Quality
from nnmon.processors.core.reference import Reference
from nnmon.processors.core.rules import Alerts, Kind, Rule, RulesError, default_rules, parse_rules
from nnmon.processors.core.sketch import RELATIVE_ACCURACY, TINY, QuantileSketch
from nnmon.processors.core.windows import MAX_EMPTY, Windows

values = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def joined_rows(draw: st.DrawFn, min_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    size = draw(st.integers(min_size, 300))
    y_true = draw(arrays(np.float64, size, elements=values))
    y_pred = draw(arrays(np.float64, size, elements=values))
    return y_true, y_pred


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(joined_rows(min_size=2))
def test_figures_are_scikit_learns(rows: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = rows
    figures = Quality.of(y_true, y_pred).figures()
    assert figures.rows == y_true.size
    assert close(figures.mae, mean_absolute_error(y_true, y_pred))
    assert close(figures.rmse, math.sqrt(mean_squared_error(y_true, y_pred)))
    assert close(figures.bias, float(np.mean(y_pred - y_true)))
    assert close(figures.max_error, float(np.max(np.abs(y_pred - y_true))))
    spread = float(np.sum((y_true - y_true.mean()) ** 2))
    # Below this spread scikit-learn's own SS_tot (summed in floats) is what is off.
    if spread > 1e-6 * max(1.0, float(np.sum((y_pred - y_true) ** 2))):
        assert math.isclose(figures.r2, r2_score(y_true, y_pred), rel_tol=1e-7, abs_tol=1e-7)
    nonzero = y_true != 0
    assert figures.zero_truths == int(np.count_nonzero(~nonzero))
    if nonzero.any():
        expected = 100 * mean_absolute_percentage_error(y_true[nonzero], y_pred[nonzero])
        assert math.isclose(figures.mape, expected, rel_tol=1e-9)
    else:
        assert math.isnan(figures.mape)


@settings(max_examples=200, deadline=None)
@given(joined_rows(), st.sampled_from([0.5, 0.9, 0.99, 0.0, 1.0, 0.37]))
def test_quantiles_are_numpys_within_the_sketchs_bound(rows: tuple[np.ndarray, np.ndarray], q: float) -> None:
    errors = np.abs(rows[1] - rows[0])
    sketch = QuantileSketch()
    sketch.add(errors)
    exact = float(np.percentile(errors, 100 * q))
    assert abs(sketch.quantile(q) - exact) <= RELATIVE_ACCURACY * exact + TINY


@settings(max_examples=100, deadline=None)
@given(joined_rows(), joined_rows())
def test_merge_equals_the_quality_of_both_exactly(a: tuple[np.ndarray, np.ndarray],
                                          b: tuple[np.ndarray, np.ndarray]) -> None:
    merged = Quality.of(*a)
    merged.merge(Quality.of(*b))
    whole = Quality.of(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    assert merged.sketch.buckets == whole.sketch.buckets and merged.sketch.zeros == whole.sketch.zeros
    # Exact sums: the same figures to the last digit, however the rows are grouped.
    assert merged.figures().to_json() == whole.figures().to_json()
    b_first = Quality.of(*b)
    b_first.merge(Quality.of(*a))
    assert b_first.figures().to_json() == whole.figures().to_json()


def test_state_round_trips() -> None:
    rng = np.random.default_rng(1)
    quality = Quality.of(rng.normal(100, 30, 500), rng.normal(100, 30, 500))
    assert Quality.from_state(quality.to_state()).figures() == quality.figures()


def test_r2_of_constant_truths_is_scikit_learns() -> None:
    y_true = np.full(5, 3.0)
    assert Quality.of(y_true, y_true).figures().r2 == r2_score(y_true, y_true) == 1.0
    assert Quality.of(y_true, y_true + 1).figures().r2 == r2_score(y_true, y_true + 1) == 0.0
    assert math.isnan(Quality.of(np.array([1.0]), np.array([2.0])).figures().r2)


def test_an_empty_quality_has_no_figures() -> None:
    figures = Quality().figures()
    assert figures.rows == 0 and math.isnan(figures.mae) and math.isnan(figures.p99)
    assert figures.to_json()["mae"] is None


def ms(seconds: float) -> np.ndarray:
    return np.array([int(seconds * 1000)], dtype=np.int64)


def one(windows: Windows, seconds: float, error: float = 1.0) -> int:
    return windows.add(ms(seconds), np.array([10.0]), np.array([10.0 + error]))


def test_rows_count_for_the_window_of_their_prediction_time() -> None:
    windows = Windows(60_000, 30_000, Quality)
    times = np.array([0, 59_999, 60_000, 125_000], dtype=np.int64)
    windows.add(times, np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0]))
    assert {s: q.rows for s, q in windows.open.items()} == {0: 2, 60_000: 1, 120_000: 1}
    # The watermark, 125 s, is past the first window's end and lateness (90 s), not the second's.
    assert [(w.start_ms, w.value.rows) for w in windows.close()] == [(0, 2)]
    assert windows.closed_before_ms == 60_000


def test_a_window_closes_once_the_watermark_is_past_its_end_and_the_lateness() -> None:
    windows = Windows(60_000, 30_000, Quality)
    one(windows, 10)
    one(windows, 90)  # exactly at end + lateness: not past it
    assert windows.close() == []
    one(windows, 90.001)
    closed = windows.close()
    assert [(w.start_ms, w.end_ms, w.value.rows) for w in closed] == [(0, 60_000, 1)]
    assert windows.close() == []  # each window once


def test_a_row_for_a_closed_window_is_late_and_counted() -> None:
    windows = Windows(60_000, 0, Quality)
    one(windows, 10)
    one(windows, 61)
    assert len(windows.close()) == 1
    assert one(windows, 20) == 1  # its window has closed
    assert windows.late_rows == 1 and 0 not in windows.open
    one(windows, 200)
    closed = windows.close()
    assert [w.late_rows for w in closed] == [1, 0]  # the late row is told with the next window closed


def test_empty_windows_between_rows_close_empty_and_a_long_gap_jumps() -> None:
    windows = Windows(1000, 0, Quality)
    one(windows, 0.5)
    one(windows, 3.5)
    assert [(w.start_ms, w.value.rows) for w in windows.close()] == [(0, 1), (1000, 0), (2000, 0)]
    one(windows, 3.6 + 5 * MAX_EMPTY)
    closed = windows.close()
    assert closed[0].start_ms == 3000 and closed[0].value.rows == 1
    assert len(closed) == 1 + MAX_EMPTY and all(w.value.rows == 0 for w in closed[1:])
    assert windows.close() == []  # the rest of the gap is not written later either


def test_windows_state_round_trips_and_refuses_another_length() -> None:
    windows = Windows(60_000, 30_000, Quality)
    one(windows, 10)
    one(windows, 100)
    windows.close()
    one(windows, 70)
    state = windows.to_state()
    restored = Windows(60_000, 30_000, Quality).restored(state, Quality.from_state)
    assert restored.to_state() == state
    with pytest.raises(ValueError):
        Windows(30_000, 30_000, Quality).restored(state, Quality.from_state)


def reference(mae: float = 10.0) -> Reference:
    rng = np.random.default_rng(2)
    y_true = rng.normal(100, 20, 1000)
    return Reference.of_rows("test", y_true, y_true + rng.choice([-mae, mae], 1000))


def figures_with_mae(mae: float) -> object:
    return Quality.of(np.zeros(4), np.full(4, mae)).figures()


def test_a_rule_fires_after_its_run_and_resolves_with_hysteresis() -> None:
    rule = Rule("mae", "mae", 1.2, kind=Kind.RELATIVE, for_windows=2, resolve_windows=2, resolve_at=1.1)
    alerts = Alerts([rule], reference(10.0))
    states = []
    for window, mae in enumerate([13, 11, 13, 13, 11.5, 10, 13, 10, 10, 13]):
        for transition in alerts.evaluate(window, window + 1, figures_with_mae(mae)):  # type: ignore[arg-type]
            states.append((window, transition.state, transition.threshold))
    # 13 > 12 twice in a row fires at window 3; 11.5 is not back within 11;
    # 10, 13 breaks the run; 10, 10 resolves at window 8.
    assert [(w, s) for w, s, _ in states] == [(3, "firing"), (8, "resolved")]
    assert math.isclose(states[0][2], 12.0) and math.isclose(states[1][2], 11.0)


def test_a_std_rule_is_nannymls_mean_plus_k_deviations() -> None:
    ref = reference(10.0)
    rule = Rule("rmse", "rmse", 3, kind=Kind.STD)
    values = [ref.window_mean["rmse"]]
    fire, _ = rule.limits(ref)
    assert math.isclose(fire, values[0] + 3 * ref.window_std["rmse"])


def test_default_rules_and_an_empty_window() -> None:
    alerts = Alerts([rule for rule in default_rules() if not rule.on_drift], reference())
    [transition] = alerts.evaluate(0, 1, Quality().figures())
    assert (transition.rule, transition.state) == ("no_rows", "firing")
    assert alerts.firing() == ["no_rows"]


def test_rules_files_are_checked() -> None:
    good = {"rule": [{"name": "r", "figure": "p99", "above": 80.0, "for_windows": 3}]}
    [rule] = parse_rules(good)
    assert (rule.figure, rule.threshold, rule.for_windows, rule.resolve_windows) == ("p99", 80.0, 3, 3)
    for bad, words in [
        ({"rule": [{"name": "r", "figure": "accuracy", "above": 1}]}, "unknown figure 'accuracy'"),
        ({"rule": [{"name": "r", "figure": "mae", "above": 1, "below": 2}]}, "one of above"),
        ({"rule": [{"name": "r", "figure": "mae", "above": "x"}]}, "must be a number"),
        ({"rule": [{"name": "r", "figure": "mae", "above": 1, "for_windows": 0}]}, "at least 1"),
        ({"rule": [{"name": "r", "figure": "mae", "above": 1, "kind": "ratio"}]}, "unknown kind"),
        ({"rule": [{"name": "r", "figure": "mae", "above": 1, "window": 2}]}, "unknown key 'window'"),
        ({"rules": []}, "unknown top-level key"),
        ({"rule": [{"name": "r", "figure": "mae", "above": 1}] * 2}, "two rules are named"),
        ({"rule": [{"name": f"r{i}", "figure": "mae", "above": 1} for i in range(101)]}, "at most 100"),
    ]:
        with pytest.raises(RulesError, match=words):
            parse_rules(bad)


def test_a_relative_rows_rule_needs_a_reference_in_time() -> None:
    with pytest.raises(RulesError, match="has no rows"):
        Alerts([Rule("few", "rows", 0.5, above=False, kind=Kind.RELATIVE)], reference())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), max_size=200), st.randoms())
def test_exact_sums_are_pythons_fsum_in_any_order(values: list[float], rng: object) -> None:
    whole = ExactSum()
    whole.add(np.array(values, dtype=np.float64))
    shuffled = list(values)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    parts = ExactSum()
    for start in range(0, len(shuffled), 7):
        part = ExactSum()
        part.add(np.array(shuffled[start:start + 7], dtype=np.float64))
        parts.merge(part)
    assert parts == whole
    try:
        expected = math.fsum(values)  # the correctly rounded exact sum
    except OverflowError:
        return
    assert whole.value() == expected
    assert ExactSum.from_state(whole.to_state()) == whole


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 20_000), min_size=1, max_size=60), st.lists(st.integers(1, 59), max_size=5))
def test_where_batches_split_makes_no_difference(times: list[int], cuts: list[int]) -> None:
    """Lateness is judged in row order: the same rows in one batch or in
    several (closing windows between) give the same windows and late rows."""
    def run(pieces: list[list[int]]) -> tuple[list[tuple[int, int, float]], int]:
        windows = Windows(1000, 500, Quality)
        closed = []
        for piece in pieces:
            if piece:
                values = np.array(piece, dtype=np.float64)
                windows.add(np.array(piece, dtype=np.int64), values, values + 1)
                closed += windows.close()
        closed += windows.flush()
        return [(w.start_ms, w.value.rows, w.value.figures().mae) for w in closed], windows.late_rows

    bounds = sorted({c for c in cuts if c < len(times)})
    pieces = [times[a:b] for a, b in zip([0, *bounds], [*bounds, len(times)])]
    assert run(pieces) == run([times])


def test_huge_values_give_infinite_figures_not_a_crash() -> None:
    figures = Quality.of(np.zeros(2), np.full(2, 1e308)).figures()
    assert figures.mae == math.inf and figures.rmse == math.inf
    assert math.isnan(Quality.of(np.array([1e154, -1e154, 3e154]), np.zeros(3)).figures().r2)


def test_a_relative_rule_needs_a_positive_reference_figure() -> None:
    y_true = np.linspace(50, 300, 100)
    low = Reference.of_rows("predicting low", y_true, y_true - 5)  # bias -5
    with pytest.raises(RulesError, match="positive reference bias"):
        Alerts([Rule("bias", "bias", 1.2, kind=Kind.RELATIVE)], low)
