"""The pure parts of watching a pipeline: progress lines, error figures,
following the CSV, per-processor totals and the status table."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnmon.processors.run.rates import RateLog
from nnmon.processors.shell.counts import CountsFile, read_counts
from nnmon.processors.watch.csv_tail import CsvTail, Row
from nnmon.processors.watch.dashboard import finite_json
from nnmon.processors.watch.error_stats import ErrorStats
from nnmon.processors.watch.status import (
    ConsumerStatus,
    CsvStatus,
    Status,
    StreamStatus,
    last_row_id,
    stream_bytes,
)
from nnmon.processors.watch.status_table import render
from nnmon.processors.watch.summaries import DriftStatus
from nnmon.streams.events.ids import IdGenerator


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_progress_line_comes_every_few_seconds_and_only_when_something_moved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    rate = RateLog(logging.getLogger("test.rates"), "joined", every_s=5, clock=clock)
    with caplog.at_level(logging.INFO, "test.rates"):
        rate.add(100)
        clock.now = 4.9
        rate.maybe_log()
        assert caplog.messages == []  # not yet due
        clock.now = 5.0
        rate.maybe_log(lambda: "3 pending")
        assert caplog.messages == ["joined 100 (+100 in 5.0s, 20.0/s); 3 pending"]
        clock.now = 20.0
        rate.maybe_log()
        assert len(caplog.messages) == 1  # nothing moved: no line
        rate.add(30)
        rate.maybe_log()
        assert caplog.messages[-1] == "joined 130 (+30 in 15.0s, 2.0/s)"


def rows(errors: list[float], ids: IdGenerator) -> list[Row]:
    return [Row(ids.next_id(), 0.0, e, e) for e in errors]


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=300), st.integers(1, 50), st.integers(1, 120))
def test_error_figures_match_a_direct_computation(errors: list[float], window: int, recent_size: int) -> None:
    stats = ErrorStats(window=window, recent_size=recent_size)
    ids = IdGenerator()
    half = len(errors) // 2
    stats.add(rows(errors[:half], ids))
    stats.add(rows(errors[half:], ids))
    assert stats.count == len(errors)
    assert stats.mae == pytest.approx(math.fsum(errors) / len(errors), rel=1e-9, abs=1e-9)
    assert stats.rmse == pytest.approx(math.sqrt(math.fsum(e * e for e in errors) / len(errors)),
                                       rel=1e-9, abs=1e-9)
    recent = stats.recent()
    assert [p["error"] for p in recent] == errors[-recent_size:]
    for i, point in zip(range(len(errors) - len(recent), len(errors)), recent):
        window_errors = errors[max(i + 1 - window, 0):i + 1]
        assert point["mae"] == pytest.approx(sum(window_errors) / len(window_errors), rel=1e-6, abs=1e-6)
    assert sum(b["count"] for b in stats.histogram_bins()["bins"]) == len(errors)


def test_no_rows_give_no_figures() -> None:
    stats = ErrorStats()
    assert (stats.mae, stats.rmse, stats.last_row_ms, stats.recent()) == (None, None, None, [])


def test_the_tail_reads_appended_rows_and_starts_over_when_the_log_does(tmp_path: Path) -> None:
    path = tmp_path / "metric_log.csv"
    tail = CsvTail(path)
    assert tail.new_rows() == (False, [])
    path.write_text("id,y_true,y_pred,absolute_error\na,1.0,3.0,2.0\nb,1.0,")  # b is being written
    assert tail.new_rows() == (True, [Row("a", 1.0, 3.0, 2.0)])
    with open(path, "a") as file:
        file.write("1.5,0.5\n")
    assert tail.new_rows() == (False, [Row("b", 1.0, 1.5, 0.5)])
    assert tail.new_rows() == (False, [])
    with open(path, "r+") as file:  # cut back to the header, as metric does from an old checkpoint
        file.truncate(len("id,y_true,y_pred,absolute_error\n"))
    assert tail.new_rows() == (True, [])
    with open(path, "a") as file:
        file.write("a,1.0,3.0,2.0\nb,1.0,1.5,0.5\n")
    assert tail.new_rows() == (False, [Row("a", 1.0, 3.0, 2.0), Row("b", 1.0, 1.5, 0.5)])
    with open(path, "r+") as file:  # cut back and written again, longer than before, between two reads
        file.truncate(len("id,y_true,y_pred,absolute_error\n"))
        file.seek(0, os.SEEK_END)
        file.write("b,1.0,1.5,0.5\na,1.0,3.0,2.0\nd,2.0,2.5,0.5\n")
    rewritten = [Row("b", 1.0, 1.5, 0.5), Row("a", 1.0, 3.0, 2.0), Row("d", 2.0, 2.5, 0.5)]
    assert tail.new_rows() == (True, rewritten)
    replacement = tmp_path / "replayed.csv"  # a replay renames a new file into place
    replacement.write_text("id,y_true,y_pred,absolute_error\nc,2.0,2.0,0.0\n")
    os.replace(replacement, path)
    assert tail.new_rows() == (True, [Row("c", 2.0, 2.0, 0.0)])


def test_the_last_row_id_is_read_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "metric_log.csv"
    ids = IdGenerator()
    first, last = ids.next_id(), ids.next_id()
    path.write_text(f"id,y_true,y_pred,absolute_error\n{first},1,2,1\n" + "x" * 5000 + "\n"
                    f"{last},1,2,1\n{ids.next_id()},1,")  # the unfinished row does not count
    assert last_row_id(path) == last
    path.write_text("id,y_true,y_pred,absolute_error\n")
    assert last_row_id(path) is None


def test_totals_are_written_at_most_every_few_seconds(tmp_path: Path) -> None:
    counts = CountsFile(tmp_path, "model", every_s=60)
    counts.update({"processed": 1})
    counts.update({"processed": 2})  # not due: the file keeps 1
    assert read_counts(tmp_path, "model")["processed"] == 1  # type: ignore[index]
    counts.update({"processed": 3}, force=True)
    saved = read_counts(tmp_path, "model")
    assert saved is not None and saved["processed"] == 3 and saved["processor"] == "model"
    assert read_counts(tmp_path, "metric") is None


def test_a_totals_file_that_cannot_be_written_does_not_stop_the_processor(tmp_path: Path) -> None:
    (tmp_path / ".counts").write_text("a file where the folder should be")
    CountsFile(tmp_path, "model").update({"processed": 1})  # logged, not raised
    assert read_counts(tmp_path, "model") is None


def test_the_size_on_disk_is_read_from_the_broker_data_directory(tmp_path: Path) -> None:
    folder = tmp_path / "rabbit@host" / "stream" / "__p-features_1795535744565853099"
    folder.mkdir(parents=True)
    (folder / "00000000000000000000.segment").write_bytes(b"x" * 1000)
    (folder / "00000000000000000000.index").write_bytes(b"x" * 24)
    for other in ("__p-features-old_1", "__p-features_x_2"):  # other streams
        (tmp_path / "rabbit@host" / "stream" / other).mkdir()
    assert stream_bytes(tmp_path, "/", "p-features") == 1024
    assert stream_bytes(tmp_path, "/", "p-y_true") is None
    assert stream_bytes(tmp_path / "missing", "/", "p-features") is None


def test_the_status_table_names_streams_consumers_and_stale_ones() -> None:
    status = Status(
        streams=[StreamStatus("p-features", True, 0, 99, 100, 1_234_567, None,
                              {"x-max-age": "7D", "x-max-length-bytes": 1_000_000_000}),
                 StreamStatus("p-rejected", False)],
        consumers=[ConsumerStatus("model", "p-features", 89, 99, 10, 42.0),
                   ConsumerStatus("metric", "p-y_true", None, None, None, None)],
        joins=[],
        csv=CsvStatus("logs/metric_log.csv", 12, "2026-11-24T10:00:00.000+00:00", None),
        notes=["management API at x: connection refused"],
    )
    text = render(status, stale_s=30)
    lines = text.splitlines()
    assert lines[1].split() == ["p-features", "0", "99", "100", "1.2", "MB",
                                "age", "7D,", "bytes", "1.0", "GB"]
    assert "p-rejected" in text and "(does not exist)" in text
    model = next(line for line in lines if line.startswith("model"))
    assert model.split() == ["model", "p-features", "89", "99", "10", "42.0s", "STALE"]
    assert "12 rows" in text and "note: management API at x" in text
    assert json.loads(json.dumps(status.to_json()))["consumers"][0]["lag"] == 10
    assert [c.processor for c in status.stale(30)] == ["model"]


def test_the_status_table_says_which_columns_drifted_and_which_drift_rules_fire() -> None:
    def window(start: str, columns: dict[str, tuple[float, bool | None]]) -> dict[str, object]:
        return {"window_start": start, "window_end_ms": 0, "drifted_share": 0.5,
                "columns": {name: {"rows": 120, "psi": psi, "drifted": drifted}
                            for name, (psi, drifted) in columns.items()}}

    alert = {"rule": "feature_drift", "column": "bmi", "state": "firing", "figure": "psi", "value": 0.61,
             "threshold": 0.2, "window_start": "2026-12-02T10:01:00.000+00:00"}
    drift = DriftStatus({
        "window_s": 60, "lateness_s": 30, "reference": "the data set", "firing": ["feature_drift[bmi]"],
        "alerts": [alert | {"column": "s5"}, alert],
        "recent": {"features": [window("10:00", {"bmi": (0.05, False), "s5": (0.1, False)}),
                                window("10:01", {"bmi": (0.61, True), "s5": (0.1, False)})],
                   "y_pred": [window("10:01", {"y_pred": (0.3, None)})], "y_true": []}})
    status = Status([], [], [], CsvStatus("m.csv", 0, None, None), drift=drift)
    text = render(status)
    assert "DRIFT windows of 60s (lateness 30s), reference: the data set" in text
    assert "  features last closed 10:01: 120 rows, drifted: bmi (psi 0.61), drifted share 0.5" in text
    assert "  y_pred last closed 10:01: 120 rows, too few rows to judge" in text
    assert "  y_true: no closed window yet" in text
    firing = text.split("DRIFT ALERT FIRING")[1].split("\n\n")[0].splitlines()
    assert firing[1:] == [line for line in firing if "feature_drift" in line]  # s5's is history: not firing
    assert firing[1].split() == ["feature_drift", "psi", "bmi", "0.61", "0.2", alert["window_start"]]
    assert status.firing() == ["feature_drift[bmi]"]


def test_lines_that_are_not_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "metric_log.csv"
    path.write_bytes(b"id,y_true,y_pred,absolute_error\na,1.0,3.0,2.0\nb,1.0\n\xff\xfe,1,1,0\nc,1,1,inf\n"
                     b"d,1.0,1.5,0.5\n")
    tail = CsvTail(path)
    assert tail.new_rows() == (True, [Row("a", 1.0, 3.0, 2.0), Row("d", 1.0, 1.5, 0.5)])
    assert tail.skipped == 3


def test_one_huge_error_does_not_hide_the_small_ones_once_it_left_the_window() -> None:
    stats = ErrorStats(window=2, recent_size=10)
    stats.add([Row("not-a-uuid", 0.0, 1e17, 1e17)] + rows([1.0, 2.0, 3.0], IdGenerator()))
    assert [p["mae"] for p in stats.recent()] == [1e17, (1e17 + 1.0) / 2, 1.5, 2.5]


def test_the_summary_json_writes_null_for_numbers_that_are_not_finite() -> None:
    stats = ErrorStats()
    stats.add([Row("x", 0.0, 1e200, 1e200)])  # its square overflows
    assert stats.rmse == math.inf
    assert json.loads(finite_json({"rmse": stats.rmse, "recent": stats.recent()})) == {
        "rmse": None, "recent": [{"t": stats.recent()[0]["t"], "error": 1e200, "mae": 1e200, "rmse": None}]}
