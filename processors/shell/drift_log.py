"""Drift's view: `drift.csv`, the drift and alerts streams' events, and a
summary for the watching tools.

Drift reads three sources, each on its own: the features (one column per
feature), the predictions (`y_pred`) and the truths (`y_true`). Each has its
own windows, closed by its own watermark (truths come later than features,
and may come days later), and its own rules. A closed window is a row per
column in the CSV, one event on the drift stream and its rules' transitions
on the alerts stream, published under a name per source
(`<prefix>drift-features`, ...) with publishing ids that the window fixes:
after a crash, the windows closed again are the same, and the broker drops
what it already holds. Rows of one source are in window order; sources
interleave as their windows close.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnmon.processors.core.drift import CSV_FIGURES, Columns, DriftFigures, DriftReference
from nnmon.processors.core.rules import Alerts, Rule, drift_rules_for
from nnmon.processors.core.track import Closing, Track
from nnmon.processors.shell.appended import AppendedFile, FileLost
from nnmon.processors.shell.joined import ViewLost
from nnmon.processors.shell.windows_log import alert_events, iso, windows_for, write_summary
from nnmon.streams.client.publisher import Outgoing
from nnmon.streams.events import codec
from nnmon.streams.settings import StreamNames

log = logging.getLogger("nnmon.drift")

HEADER = "window_start,window_end,column," + ",".join(CSV_FIGURES) + ",drifted\n"
SOURCES = ("features", "y_pred", "y_true")
RECENT = 60  # closed windows per source kept for the watching tools
HISTORY = 50  # alert transitions kept for them
# Publishing ids of alerts: the window's end in ms times this, plus the
# transition's place among the window's (a source has at most this many rules
# once each rule for every feature is one per feature).
ALERTS_PER_WINDOW = 10_000


@dataclass(frozen=True)
class DriftSettings:
    window_s: float
    lateness_s: float
    rules: tuple[Rule, ...]  # drift's rules as given (a rule for every feature not yet one per feature)
    reference: DriftReference

    def columns(self, source: str) -> tuple[str, ...]:
        """The columns of a source (none for y_pred or y_true where the reference has none)."""
        if source == "features":
            return self.reference.features
        return (source,) if source in self.reference.bins else ()

    def sources(self) -> tuple[str, ...]:
        return tuple(source for source in SOURCES if self.columns(source))

    def rules_of(self, source: str) -> list[Rule]:
        return drift_rules_for(list(self.rules), self.columns(source), self.reference.features)

    def track(self, source: str) -> Track[Columns]:
        """A source's windows and rules, fresh."""
        columns = self.columns(source)
        reference = self.reference

        def empty() -> Columns:
            return Columns(reference, columns)

        return Track(windows_for(self.window_s, self.lateness_s, empty),
                     Alerts(self.rules_of(source), reference), empty().load)


def publisher_name(names: StreamNames, source: str) -> str:
    """Drift publishes a source's events under this name: its windows close
    in their own order, and publishing ids only grow per name."""
    return names.consumer(f"drift-{source}")


def summary_path(logs_dir: Path) -> Path:
    return logs_dir / ".drift.json"


def _number(value: float) -> str:
    return "" if math.isnan(value) else repr(value)


def _field(text: str) -> str:
    """A CSV field, quoted where it must be (a column named with a comma)."""
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n\r') else text


def format_rows(start_ms: int, end_ms: int, figures: DriftFigures) -> str:
    """One CSV row per column of a closed window; a figure the window has not
    (no rows) is an empty field."""
    lines = []
    for name, column in figures.columns.items():
        drifted = column.drifted
        fields = [iso(start_ms), iso(end_ms), _field(name), str(column.rows),
                  *(_number(column.value(f)) for f in CSV_FIGURES[1:]),
                  "" if drifted is None else str(drifted).lower()]
        lines.append(",".join(fields) + "\n")
    return "".join(lines)


def drift_json(source: str, start_ms: int, end_ms: int, figures: DriftFigures) -> dict[str, Any]:
    """A closed window's drift as an event's body (NaN as null)."""

    def number(value: float) -> float | None:
        return None if math.isnan(value) else value

    return {"source": source, "window_start": iso(start_ms), "window_end": iso(end_ms),
            "window_start_ms": start_ms, "window_end_ms": end_ms,
            "drifted_share": number(figures.drifted_share),
            "columns": {name: {"rows": c.rows, **{f: number(c.value(f)) for f in CSV_FIGURES[1:]},
                               "drifted": c.drifted} for name, c in figures.columns.items()}}


class DriftLog:
    """Closed windows of each source to `path`, their events to the outbox,
    a summary to `summary` (when given) at each sync."""

    def __init__(self, path: Path, settings: DriftSettings, names: StreamNames,
                 state: dict[str, Any] | None, summary: Path | None = None, quiet: bool = False) -> None:
        self.settings = settings
        self.names = names
        self.quiet = quiet  # no log line per transition (a replay's are history)
        self.summary_path = summary
        try:
            self._csv = AppendedFile(path, HEADER.encode(), 0 if state is None else int(state["csv_bytes"]))
        except FileLost as lost:
            raise ViewLost(str(lost)) from None
        self.tracks = {source: settings.track(source) for source in settings.sources()}
        self.recent: dict[str, list[dict[str, Any]]] = {source: [] for source in self.tracks}
        self.history: list[dict[str, Any]] = []
        if state is not None:
            try:
                if sorted(state["tracks"]) != sorted(self.tracks):
                    raise ValueError("the checkpoint has other sources than the reference's columns")
                for source, track in self.tracks.items():
                    track.restore(state["tracks"][source])
                self.recent = {source: list(state["recent"][source]) for source in self.tracks}
                self.history = list(state["history"])
            except (ValueError, KeyError, TypeError) as error:
                self._csv.close()
                raise ViewLost(f"{path}: {error}") from None
        self._outbox: dict[str, dict[str, list[Outgoing]]] = {}

    def add(self, source: str, times_ms: np.ndarray, values: np.ndarray) -> None:
        """Count a source's rows: their prediction times and a matrix of
        their values, one column per column of the source."""
        closings = self.tracks[source].add(times_ms, values)
        if closings:
            self._csv.append("".join(format_rows(c.window.start_ms, c.window.end_ms, c.figures)
                                     for c in closings).encode())
            for closing in closings:
                self._closed(source, closing)

    def _closed(self, source: str, closing: Closing[Columns]) -> None:
        window, names = closing.window, self.names
        body = drift_json(source, window.start_ms, window.end_ms, closing.figures) | {
            "late_rows": window.late_rows}
        now_ms = time.time_ns() // 1_000_000
        outbox = self._outbox.setdefault(source, {names.drift: [], names.alerts: []})
        message = codec.encode_derived("drift", f"drift-{source}-{iso(window.start_ms)}", now_ms, body)
        message.publishing_id = window.end_ms
        outbox[names.drift].append(message)
        self.recent[source] = (self.recent[source] + [body])[-RECENT:]
        for message, alert in alert_events(closing, now_ms, ALERTS_PER_WINDOW, self.quiet):
            outbox[names.alerts].append(message)
            self.history = (self.history + [alert])[-HISTORY:]

    def outgoing(self) -> dict[str, dict[str, list[Outgoing]]]:
        """Per source, the events of the windows closed since the last call, per stream."""
        out = {source: {stream: messages for stream, messages in streams.items() if messages}
               for source, streams in self._outbox.items()}
        self._outbox = {}
        return {source: streams for source, streams in out.items() if streams}

    def firing(self) -> list[str]:
        return [key for track in self.tracks.values() for key in track.alerts.firing()]

    def sync(self) -> None:
        self._csv.sync()
        if self.summary_path is not None:
            self._write_summary(self.summary_path)

    def _write_summary(self, path: Path) -> None:
        """For watching: not durable, rewritten at each checkpoint."""
        settings, reference = self.settings, self.settings.reference
        rules = []
        for source in self.tracks:
            for rule in settings.rules_of(source):
                fire, resolve = rule.limits(reference)
                rules.append({"name": rule.name, "key": rule.key, "figure": rule.figure,
                              "column": rule.column, "above": rule.above, "threshold": fire,
                              "resolve_at": resolve})
        summary = {
            "updated_at": time.time(), "window_s": settings.window_s, "lateness_s": settings.lateness_s,
            "reference": reference.source, "features": list(reference.features), "rules": rules,
            "firing": self.firing(), "recent": self.recent, "alerts": self.history,
            "late_rows": {source: track.windows.late_rows for source, track in self.tracks.items()},
        }
        write_summary(path, summary)

    def state(self) -> dict[str, Any]:
        return {"csv_bytes": self._csv.size(),
                "tracks": {source: track.to_state() for source, track in self.tracks.items()},
                "recent": self.recent, "history": self.history}

    def close(self) -> None:
        self._csv.close()


def rebuild_drift(path: Path, rows: dict[str, tuple[np.ndarray, np.ndarray]], settings: DriftSettings,
                  names: StreamNames, summary: Path | None,
                  ) -> tuple[dict[str, Any], dict[str, dict[str, list[Outgoing]]]]:
    """Write the windows of each source's rows (times, values) to `path` in
    one piece (a file beside it, renamed over it once durable), sources in
    SOURCES' order; their state, for drift to carry on from, and their
    events (with drift's publishing ids)."""
    partial = path.with_name(path.name + ".partial")
    view = DriftLog(partial, settings, names, None, summary, quiet=True)
    try:
        for source in view.tracks:
            if source in rows:
                view.add(source, *rows[source])
        events = view.outgoing()
        view.sync()
        state = view.state()
    finally:
        view.close()
    os.replace(partial, path)
    return state, events
