"""Windows and alert rules together: rows in, closed windows with their
figures and the rules' transitions out, in window order. What metric runs
live and `nnmon check` runs over history, so both close and judge alike.

Pure: arrays in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmon.processors.core.quality import Figures
from nnmon.processors.core.rules import Alerts, Transition
from nnmon.processors.core.windows import ClosedWindow, Windows


@dataclass(frozen=True)
class Closing:
    window: ClosedWindow
    figures: Figures
    transitions: list[Transition]


class QualityTrack:
    def __init__(self, windows: Windows, alerts: Alerts) -> None:
        self.windows = windows
        self.alerts = alerts

    def add(self, times_ms: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> list[Closing]:
        """Count rows; the windows that closed, judged."""
        self.windows.add(times_ms, y_true, y_pred)
        return self._judged(self.windows.close())

    def flush(self) -> list[Closing]:
        """Close every open window: the end of a bounded history."""
        return self._judged(self.windows.flush())

    def _judged(self, closed: list[ClosedWindow]) -> list[Closing]:
        closings = []
        for window in closed:
            figures = window.figures()
            closings.append(Closing(window, figures,
                                    self.alerts.evaluate(window.start_ms, window.end_ms, figures)))
        return closings

    def to_state(self) -> dict[str, Any]:
        return {"windows": self.windows.to_state(), "alerts": self.alerts.to_state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the windows and rules' states from a checkpoint; ValueError
        if the windows were cut at other lengths than these."""
        self.windows = Windows.from_state(state["windows"], self.windows.window_ms, self.windows.lateness_ms)
        self.alerts.restore(state["alerts"])
