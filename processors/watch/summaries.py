"""The summaries the window views leave for watchers, as their writers last
left them: metric's quality windows (`.quality.json`) and drift's
(`.drift.json`), each with its rules, recent windows and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from nnmon.processors.shell import drift_log, windows_log


@dataclass(frozen=True)
class Summary:
    summary: dict[str, Any]

    @property
    def firing(self) -> list[str]:
        """The keys of the rules firing now (`feature_drift[bmi]` for a rule per column)."""
        return list(self.summary.get("firing", []))

    def firing_alerts(self) -> list[dict[str, Any]]:
        """The transition that set each firing rule off."""
        latest: dict[str, dict[str, Any]] = {}
        for alert in self.summary.get("alerts", []):
            latest[alert_key(alert)] = alert
        return [latest[key] for key in self.firing if key in latest]


def alert_key(alert: dict[str, Any]) -> str:
    """An alert event's rule key (as `Rule.key` makes it)."""
    column = alert.get("column")
    return alert["rule"] if column is None else f"{alert['rule']}[{column}]"


@dataclass(frozen=True)
class QualityStatus(Summary):
    @property
    def last_window(self) -> dict[str, Any] | None:
        recent = self.summary.get("recent") or []
        return recent[-1] if recent else None

    @property
    def open_window(self) -> dict[str, Any] | None:
        windows = self.summary.get("open") or []
        return windows[-1] if windows else None


@dataclass(frozen=True)
class DriftStatus(Summary):
    def sources(self) -> list[str]:
        return list((self.summary.get("recent") or {}).keys())

    def last_window(self, source: str) -> dict[str, Any] | None:
        """The source's last closed window: its `columns` with their figures."""
        recent = (self.summary.get("recent") or {}).get(source) or []
        return recent[-1] if recent else None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        summary = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return summary if isinstance(summary, dict) else None


def read_quality(logs_dir: Path) -> QualityStatus | None:
    """None when metric has not written one (yet) or it cannot be read."""
    summary = _read(windows_log.summary_path(logs_dir))
    return None if summary is None else QualityStatus(summary)


def read_drift(logs_dir: Path) -> DriftStatus | None:
    """None when drift has not written one (yet) or it cannot be read."""
    summary = _read(drift_log.summary_path(logs_dir))
    return None if summary is None else DriftStatus(summary)
