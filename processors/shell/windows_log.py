"""The quality windows of the joined rows: `metric_windows.csv`, the quality
and alerts streams, and a summary for the watching tools.

A view like the metric log (`csv_log`): rows come in through `write_rows`, closed
windows are appended to the CSV, and everything it needs to resume (the
CSV's length, the open windows, the rules' states) goes into metric's
checkpoint. Each closed window and each alert transition is also an event,
handed to the join runner through `outgoing` and published before the
checkpoint is written, under metric's publisher name with a publishing id
that the window fixes: after a crash, the windows closed again are the
same, and the broker drops what it already holds.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson

from nnmon.processors.core.join import Pair
from nnmon.processors.core.quality import FIGURES, Figures, Quality
from nnmon.processors.core.reference import Reference
from nnmon.processors.core.rows import Rows
from nnmon.processors.core.rules import MAX_RULES, Alerts, Rule, Transition
from nnmon.processors.core.track import Closing, Track
from nnmon.processors.core.windows import ClosedWindow, Windows, WindowValue
from nnmon.processors.shell.appended import AppendedFile, FileLost
from nnmon.processors.shell.atomic import write_atomically
from nnmon.processors.shell.csv_log import CsvLog
from nnmon.processors.shell.joined import ViewLost
from nnmon.streams.client.publisher import Outgoing
from nnmon.streams.events import codec
from nnmon.streams.events.ids import prediction_times
from nnmon.streams.settings import StreamNames

log = logging.getLogger("nnmon.windows")
V = TypeVar("V", bound=WindowValue)

HEADER = "window_start,window_end," + ",".join(FIGURES) + "\n"
RECENT = 120  # closed windows kept for the watching tools (two hours of minutes)
HISTORY = 50  # alert transitions kept for them
# Publishing ids of alerts: the window's end in ms times this, plus the
# transition's place among the window's (there are at most this many rules).
ALERTS_PER_WINDOW = MAX_RULES


@dataclass(frozen=True)
class QualitySettings:
    window_s: float
    lateness_s: float
    rules: tuple[Rule, ...]
    reference: Reference

    def empty_windows(self) -> Windows[Quality]:
        return windows_for(self.window_s, self.lateness_s, Quality)

    def track(self) -> Track[Quality]:
        """Windows and rules, fresh."""
        return Track(self.empty_windows(), Alerts(list(self.rules), self.reference), Quality.from_state)


def windows_for(window_s: float, lateness_s: float, empty: Callable[[], V]) -> Windows[V]:
    """Empty windows of these lengths, in seconds, each holding a value `empty()` makes."""
    return Windows(max(1, round(window_s * 1000)), round(lateness_s * 1000), empty)


def columns(rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows' prediction times, truths and predictions, as the windows take them."""
    times = np.array(prediction_times(rows.ids, rows.prediction_ms), dtype=np.int64)
    return times, np.array(rows.y_true, dtype=np.float64), np.array(rows.y_pred, dtype=np.float64)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_window(window: ClosedWindow[Quality], figures: Figures) -> str:
    """One CSV row; a figure the window has not (an empty window's MAE) is an empty field."""
    fields = [iso(window.start_ms), iso(window.end_ms)]
    for figure in FIGURES:
        value = getattr(figures, figure)
        fields.append("" if isinstance(value, float) and math.isnan(value) else repr(value))
    return ",".join(fields) + "\n"


def summary_path(logs_dir: Path) -> Path:
    """Where metric leaves the windows' summary for status, the dashboard and /metrics."""
    return logs_dir / ".quality.json"


class WindowsLog:
    """Closed windows to `path`, their events to the outbox, a summary to
    `summary` (when given) at each sync."""

    def __init__(self, path: Path, settings: QualitySettings, names: StreamNames,
                 state: dict[str, Any] | None, summary: Path | None = None, quiet: bool = False) -> None:
        self.settings = settings
        self.quiet = quiet  # no log line per transition (a replay's are history)
        self.names = names
        try:
            self._csv = AppendedFile(path, HEADER.encode(), 0 if state is None else int(state["csv_bytes"]))
        except FileLost as lost:
            raise ViewLost(str(lost)) from None
        self.track = settings.track()
        self.recent: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        if state is not None:
            try:
                self.track.restore(state)
                self.recent = list(state["recent"])
                self.history = list(state["history"])
            except (ValueError, KeyError, TypeError) as error:
                self._csv.close()
                raise ViewLost(f"{path}: {error}") from None
        self._outbox: dict[str, list[Outgoing]] = {names.quality: [], names.alerts: []}
        self.summary_path = summary

    def write_rows(self, rows: Rows) -> None:
        closings = self.track.add(*columns(rows))
        if closings:
            self._csv.append("".join(format_window(c.window, c.figures) for c in closings).encode())
            for closing in closings:
                self._closed(closing)

    def _closed(self, closing: Closing[Quality]) -> None:
        window = closing.window
        body = window_json(window.start_ms, window.end_ms, closing.figures) | {"late_rows": window.late_rows}
        now_ms = time.time_ns() // 1_000_000
        message = codec.encode_derived("quality", f"quality-{iso(window.start_ms)}", now_ms, body)
        message.publishing_id = window.end_ms
        self._outbox[self.names.quality].append(message)
        self.recent = (self.recent + [body])[-RECENT:]
        for message, alert in alert_events(closing, now_ms, ALERTS_PER_WINDOW, self.quiet):
            self._outbox[self.names.alerts].append(message)
            self.history = (self.history + [alert])[-HISTORY:]

    def outgoing(self) -> dict[str, list[Outgoing]]:
        """The events of the windows closed since the last call."""
        out = {stream: messages for stream, messages in self._outbox.items() if messages}
        self._outbox = {stream: [] for stream in self._outbox}
        return out

    def sync(self) -> None:
        self._csv.sync()
        if self.summary_path is not None:
            self._write_summary(self.summary_path)

    def _write_summary(self, path: Path) -> None:
        """For watching: not durable, rewritten at each checkpoint."""
        settings, windows = self.settings, self.track.windows
        summary = {
            "updated_at": time.time(), "window_s": settings.window_s, "lateness_s": settings.lateness_s,
            "reference": settings.reference.to_json(),
            "rules": [_rule_json(rule, settings.reference) for rule in settings.rules],
            "firing": self.track.alerts.firing(), "late_rows": windows.late_rows,
            "open": [window_json(start, start + windows.window_ms, quality.figures())
                     for start, quality in windows.open_windows()],
            "recent": self.recent, "alerts": self.history,
        }
        write_summary(path, summary)

    def state(self) -> dict[str, Any]:
        return {"csv_bytes": self._csv.size(), **self.track.to_state(), "recent": self.recent,
                "history": self.history}

    def close(self) -> None:
        self._csv.close()


def alert_events(closing: Closing[Any], now_ms: int, per_window: int,
                 quiet: bool) -> list[tuple[Outgoing, dict[str, Any]]]:
    """The alert events of a closed window's transitions, each with its body,
    publishing id = the window's end times `per_window` plus its place;
    each logged as a WARNING unless `quiet` (a replay's are history)."""
    window, events = closing.window, []
    for place, transition in enumerate(closing.transitions):
        alert = alert_json(transition)
        if not quiet:
            log.warning("%s", describe(transition))
        column = "" if transition.column is None else f"-{transition.column}"
        message_id = f"alert-{transition.rule}{column}-{transition.state}-{iso(window.start_ms)}"
        message = codec.encode_derived("alert", message_id, now_ms, alert)
        message.publishing_id = window.end_ms * per_window + place
        events.append((message, alert))
    return events


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """A summary for the watching tools: not durable, rewritten at each checkpoint."""
    try:
        write_atomically(path, lambda file: file.write(orjson.dumps(summary)), durable=False)
    except OSError as error:
        log.warning("cannot write %s (%s)", path, error.strerror)


def window_json(start_ms: int, end_ms: int, figures: Figures) -> dict[str, Any]:
    return {"window_start": iso(start_ms), "window_end": iso(end_ms), "window_start_ms": start_ms,
            "window_end_ms": end_ms, **figures.to_json()}


def _rule_json(rule: Rule, reference: Reference) -> dict[str, Any]:
    fire, resolve = rule.limits(reference)
    return {"name": rule.name, "figure": rule.figure, "above": rule.above, "kind": rule.kind.value,
            "threshold": fire, "resolve_at": resolve, "for_windows": rule.for_windows,
            "resolve_windows": rule.resolve_windows}


def alert_json(transition: Transition) -> dict[str, Any]:
    return {"rule": transition.rule, "state": transition.state,
            "window_start": iso(transition.window_start_ms), "window_end": iso(transition.window_end_ms),
            "figure": transition.figure, "value": transition.value, "threshold": transition.threshold,
            "reference": None if math.isnan(transition.reference) else transition.reference,
            **({} if transition.column is None else {"column": transition.column})}


def describe(transition: Transition) -> str:
    """A transition in one line (metric and drift log it as a WARNING)."""
    figure = transition.figure if transition.column is None else f"{transition.figure} of {transition.column}"
    return (f"alert {transition.rule} {transition.state}: {figure} {transition.value:.6g} "
            f"against {transition.threshold:.6g} (reference {transition.reference:.6g}) in the window "
            f"{iso(transition.window_start_ms)} to {iso(transition.window_end_ms)}")


class MetricViews:
    """metric's views: the metric log of rows and the quality windows, in one checkpoint."""

    def __init__(self, rows: CsvLog, windows: WindowsLog) -> None:
        self.rows = rows
        self.windows = windows

    def write(self, pairs: Sequence[Pair]) -> None:
        rows = Rows.of(pairs)
        self.rows.write_rows(rows)
        self.windows.write_rows(rows)

    def outgoing(self) -> dict[str, list[Outgoing]]:
        return self.windows.outgoing()

    def sync(self) -> None:
        self.rows.sync()
        self.windows.sync()

    def state(self) -> dict[str, Any]:
        return self.rows.state() | {"windows": self.windows.state()}

    def close(self) -> None:
        self.rows.close()
        self.windows.close()


def open_metric_views(csv_path: Path, windows_path: Path, settings: QualitySettings, names: StreamNames,
                      state: dict[str, Any] | None) -> MetricViews:
    """metric's views as `state` left them, or afresh. A checkpoint from
    before the windows were kept counts as lost: both are rebuilt."""
    if state is not None and "windows" not in state:
        raise ViewLost("the checkpoint has no quality windows")
    rows = CsvLog(csv_path, state)
    try:
        windows = WindowsLog(windows_path, settings, names, None if state is None else state["windows"],
                             summary_path(windows_path.parent))
    except BaseException:
        rows.close()
        raise
    return MetricViews(rows, windows)


def rebuild_windows(path: Path, rows: Rows, settings: QualitySettings, names: StreamNames,
                    summary: Path | None) -> tuple[dict[str, Any], dict[str, list[Outgoing]]]:
    """Write the windows of `rows` to `path` in one piece (a file beside it,
    renamed over it once durable); their state, for metric to carry on
    from, and their events (with metric's publishing ids: published under
    metric's name, the broker keeps only those it does not hold yet)."""
    partial = path.with_name(path.name + ".partial")
    windows = WindowsLog(partial, settings, names, None, summary, quiet=True)
    try:
        windows.write_rows(rows)
        events = windows.outgoing()
        windows.sync()
        state = windows.state()
    finally:
        windows.close()
    os.replace(partial, path)
    return state, events
