"""metric's windows view on real files: the CSV's format, exactly once
across a restore from any checkpoint, and the events it hands over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnmon.processors.core.rows import Rows
from nnmon.processors.core.rules import default_rules
from nnmon.processors.shell.joined import ViewLost
from nnmon.processors.shell.quality_setup import builtin_reference, checked
from nnmon.processors.shell.windows_log import ALERTS_PER_WINDOW, QualitySettings, WindowsLog
from nnmon.streams.events import codec
from nnmon.streams.events.ids import IdGenerator
from nnmon.streams.settings import StreamNames

NAMES = StreamNames("t-")
START_MS = 1_800_000_000_000


def settings(window_s: float = 1.0, lateness_s: float = 0.5) -> QualitySettings:
    reference = builtin_reference()
    return QualitySettings(window_s, lateness_s, checked(default_rules(), reference), reference)


def batches(count: int = 40, rows: int = 50, drift_after: int = 1000) -> list[Rows]:
    """Rows 20 ms apart by their ids' time; after `drift_after` rows the errors grow fivefold."""
    rng = np.random.default_rng(3)
    clock = iter(range(START_MS, START_MS + count * rows * 20, 20))
    ids = IdGenerator(clock_ms=lambda: next(clock))
    made = []
    for index in range(count):
        event_ids = [ids.next_id() for _ in range(rows)]
        y_true = rng.normal(150, 70, rows)
        noise = rng.normal(0, 50, rows) * (5 if index * rows >= drift_after else 1)
        made.append(Rows.joined(event_ids, y_true.tolist(), (y_true + noise).tolist(), [START_MS] * rows))
    return made


def run(path: Path, rows: list[Rows], state: dict | None = None) -> tuple[WindowsLog, dict]:
    log = WindowsLog(path, settings(), NAMES, state)
    for batch in rows:
        log.write_rows(batch)
    log.sync()
    return log, log.state()


def test_the_csv_has_one_row_per_closed_window_with_pandas_readable_figures(tmp_path: Path) -> None:
    path = tmp_path / "metric_windows.csv"
    log, _ = run(path, batches())
    events = log.outgoing()
    log.close()
    text = path.read_text()
    assert text.splitlines()[0] == "window_start,window_end,rows,mae,rmse,bias,r2,mape,max_error,p50,p90,p99"
    frame = pd.read_csv(path, parse_dates=["window_start", "window_end"])
    # 2,000 rows over 40 s: windows of 1 s, the last ones still open (0.5 s of lateness).
    assert list(frame["rows"]) == [50] * len(frame) and 36 <= len(frame) <= 39
    assert (frame["window_end"] - frame["window_start"]).dt.total_seconds().eq(1.0).all()
    assert str(frame["window_start"].dt.tz) == "UTC"
    quality = [codec.decode_derived(bytes(m)) for m in events[NAMES.quality]]
    assert [body["rows"] for _, body in quality] == list(frame["rows"])
    assert [m.publishing_id for m in events[NAMES.quality]] == \
        [int(t.timestamp() * 1000) for t in frame["window_end"]]
    alerts = [codec.decode_derived(bytes(m))[1] for m in events[NAMES.alerts]]
    assert [(a["rule"], a["state"]) for a in alerts] == [("mae_above_reference", "firing"),
                                                          ("rmse_above_reference", "firing")]
    # Fired on the second drifted window: the rows from the 1,000th on, 20 s in.
    assert alerts[0]["window_start"] == "2027-01-15T08:00:21.000Z"
    assert [m.publishing_id for m in events[NAMES.alerts]] == \
        [int(pd.Timestamp("2027-01-15T08:00:22Z").timestamp() * 1000) * ALERTS_PER_WINDOW + i for i in (0, 1)]


@pytest.mark.parametrize("cut", [0, 7, 23, 39])
def test_a_restore_from_any_checkpoint_gives_the_same_file_and_events(tmp_path: Path, cut: int) -> None:
    rows = batches()
    whole, _ = run(tmp_path / "whole.csv", rows)
    whole_events = whole.outgoing()
    whole.close()
    path = tmp_path / "metric_windows.csv"
    first, state = run(path, rows[:cut])
    first.outgoing()
    for batch in rows[cut:cut + 5]:  # written after the checkpoint, then a crash: cut off on restore
        first.write_rows(batch)
    first.close()
    second, _ = run(path, rows[cut:], state)
    events = second.outgoing()
    second.close()
    assert path.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert [m.publishing_id for m in events[NAMES.quality]] == \
        [m.publishing_id for m in whole_events[NAMES.quality]][-len(events[NAMES.quality]):]


def test_windows_cut_at_another_length_are_rebuilt(tmp_path: Path) -> None:
    log, state = run(tmp_path / "w.csv", batches(5))
    log.close()
    with pytest.raises(ViewLost):
        WindowsLog(tmp_path / "w.csv", settings(window_s=2.0), NAMES, state)


def test_the_builtin_reference_is_cached_and_a_stale_cache_made_again(tmp_path: Path) -> None:
    cache = tmp_path / "builtin-reference.json"
    fitted = builtin_reference()
    assert builtin_reference(cache).figures == fitted.figures  # made, and written
    assert builtin_reference(cache) == fitted  # read back
    stale = json.loads(cache.read_text())
    stale["key"] = "scikit-learn 0.1"
    stale["chunks"] = stale["chunks"][:1]
    cache.write_text(json.dumps(stale))
    assert builtin_reference(cache) == fitted
    assert json.loads(cache.read_text())["key"] != "scikit-learn 0.1"
