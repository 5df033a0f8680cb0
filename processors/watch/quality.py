"""The quality windows as metric last left them (its summary file): the
reference, the rules, the last closed windows, the open one and the alerts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from nnmon.processors.shell.windows_log import summary_path


@dataclass(frozen=True)
class QualityStatus:
    summary: dict[str, Any]

    @property
    def firing(self) -> list[str]:
        return list(self.summary.get("firing", []))

    @property
    def last_window(self) -> dict[str, Any] | None:
        recent = self.summary.get("recent") or []
        return recent[-1] if recent else None

    @property
    def open_window(self) -> dict[str, Any] | None:
        windows = self.summary.get("open") or []
        return windows[-1] if windows else None

    def firing_alerts(self) -> list[dict[str, Any]]:
        """The transition that set each firing rule off."""
        latest: dict[str, dict[str, Any]] = {}
        for alert in self.summary.get("alerts", []):
            latest[alert["rule"]] = alert
        return [latest[rule] for rule in self.firing if rule in latest]


def read_quality(logs_dir: Path) -> QualityStatus | None:
    """None when metric has not written one (yet) or it cannot be read."""
    try:
        summary = orjson.loads(summary_path(logs_dir).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return QualityStatus(summary) if isinstance(summary, dict) else None
