"""`nnmon status` for people: aligned columns, like `kafka-consumer-groups
--describe`. Pure: a `Status` in, text out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnmon.processors.watch.status import ConsumerStatus, Status
from nnmon.processors.watch.summaries import DriftStatus, QualityStatus, Summary

_NONE = "-"


def _state(consumer: ConsumerStatus, stale_s: float | None) -> str:
    if stale_s is not None and consumer.stale(stale_s):
        return "STALE"
    return "never ran" if consumer.never_ran else ""


def render(status: Status, stale_s: float | None = None) -> str:
    streams = _table(
        ("STREAM", "FIRST", "LAST", "MESSAGES", "SIZE", "RETENTION"),
        [(s.name, s.first, s.last, s.messages, _bytes(s.bytes_on_disk, s.segments), _retention(s.retention))
         if s.exists else (s.name, "(does not exist)", "", "", "", "") for s in status.streams],
    )
    consumers = _table(
        ("CONSUMER", "STREAM", "STORED", "LAST", "LAG", "BEHIND", ""),
        [(c.processor, c.stream, c.stored, c.last, c.lag, _seconds(c.behind_s),
          _state(c, stale_s)) for c in status.consumers],
    )
    joins = _table(
        ("JOIN", "JOINED", "PENDING", "EXPIRED", "CHECKPOINT"),
        [(j.processor, j.joined, j.pending, j.expired, j.checkpoint_at) for j in status.joins],
    ) if status.joins else "JOIN: no checkpoint yet"
    csv = status.csv
    csv_line = (f"CSV {csv.path}: {csv.rows} rows, last row {csv.last_row_at or _NONE}, "
                f"written {csv.modified_at or _NONE}")
    notes = [f"note: {note}" for note in status.notes]
    return "\n\n".join([streams, consumers, joins, _quality(status.quality), _drift(status.drift),
                        "\n".join([csv_line, *notes])]) + "\n"


def _quality(quality: QualityStatus | None) -> str:
    if quality is None:
        return "QUALITY: no windows yet"
    summary = quality.summary
    reference = summary.get("reference", {})
    figures = reference.get("figures", {})
    lines = [f"QUALITY windows of {summary.get('window_s', 0):g}s "
             f"(lateness {summary.get('lateness_s', 0):g}s), reference mae {_number(figures.get('mae'))} "
             f"rmse {_number(figures.get('rmse'))}: {reference.get('source', '?')}"]
    for label, window in (("last closed", quality.last_window), ("open", quality.open_window)):
        if window is not None:
            lines.append(f"  {label} {window['window_start']}: {window['rows']} rows, mae "
                         f"{_number(window.get('mae'))}, rmse {_number(window.get('rmse'))}, "
                         f"p99 {_number(window.get('p99'))}")
    if summary.get("late_rows"):
        lines.append(f"  late rows (their window had closed): {summary['late_rows']}")
    lines.append(_firing(quality, "ALERT"))
    return "\n".join(lines)


def _drift(drift: DriftStatus | None) -> str:
    if drift is None:
        return "DRIFT: no windows yet"
    summary = drift.summary
    lines = [f"DRIFT windows of {summary.get('window_s', 0):g}s "
             f"(lateness {summary.get('lateness_s', 0):g}s), reference: {summary.get('reference', '?')}"]
    for source in drift.sources():
        window = drift.last_window(source)
        if window is None:
            lines.append(f"  {source}: no closed window yet")
            continue
        columns = window["columns"]
        judged = [name for name, c in columns.items() if c["drifted"] is not None]
        drifted = [f"{name} (psi {_number(c['psi'])})" for name, c in columns.items() if c["drifted"]]
        rows = max((c["rows"] for c in columns.values()), default=0)
        verdict = (f"drifted: {', '.join(drifted)}" if drifted else "no drift" if judged
                   else "too few rows to judge")
        share = "" if source != "features" else f", drifted share {_number(window.get('drifted_share'))}"
        lines.append(f"  {source} last closed {window['window_start']}: {rows} rows, {verdict}{share}")
    lines.append(_firing(drift, "DRIFT ALERT"))
    return "\n".join(lines)


def _firing(summary: Summary, label: str) -> str:
    firing = summary.firing_alerts()
    if not firing:
        return f"{label}S: none firing"
    per_column = any("column" in alert for alert in firing)  # drift's rules watch a column each
    headers = (f"{label} FIRING", "FIGURE", *(("COLUMN",) if per_column else ()), "VALUE", "THRESHOLD",
               "SINCE WINDOW")
    rows = [(a["rule"], a["figure"], *((a.get("column"),) if per_column else ()), _number(a["value"]),
             _number(a["threshold"]), a["window_start"]) for a in firing]
    return _table(headers, rows)


def _number(value: Any) -> str:
    return _NONE if value is None else f"{value:.4g}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(headers)] + [[_NONE if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)


def _bytes(size: int | None, segments: int | None) -> str:
    if size is None:
        return _NONE if segments is None else f"{segments} segments"
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("kB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


_RETENTION_LABELS = {"x-max-age": "age", "x-max-length-bytes": "bytes",
                     "x-stream-max-segment-size-bytes": "segment"}


def _retention(arguments: dict[str, Any] | None) -> str:
    if arguments is None:
        return _NONE
    shown = []
    for key, value in sorted(arguments.items()):
        label = _RETENTION_LABELS.get(key, key.removeprefix("x-"))
        if label in ("bytes", "segment") and isinstance(value, int):
            value = _bytes(value, None)
        shown.append(f"{label} {value}")
    return ", ".join(shown) or "none"


def _seconds(value: float | None) -> str:
    return _NONE if value is None else f"{value:.1f}s"
