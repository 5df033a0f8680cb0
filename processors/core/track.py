"""Windows and alert rules together: rows in, closed windows with their
figures and the rules' transitions out, in window order. What metric and
drift run live and `nnmon check` runs over history, so all close and judge
alike.

Pure: arrays in, values out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from nnmon.processors.core.rules import Alerts, Measured, Transition
from nnmon.processors.core.windows import ClosedWindow, Windows, WindowValue


class Judged(WindowValue, Protocol):
    """A window's value that rules can judge: it has figures."""

    def figures(self) -> Measured: ...


V = TypeVar("V", bound=Judged)


@dataclass(frozen=True)
class Closing(Generic[V]):
    window: ClosedWindow[V]
    figures: Any  # the value's figures (core.quality.Figures, core.drift.DriftFigures)
    transitions: list[Transition]


class Track(Generic[V]):
    """Windows of values, and rules on their figures."""

    def __init__(self, windows: Windows[V], alerts: Alerts, load: Callable[[Any], V]) -> None:
        self.windows = windows
        self.alerts = alerts
        self.load = load  # a value from its state

    def add(self, times_ms: np.ndarray, *columns: np.ndarray) -> list[Closing[V]]:
        """Count rows; the windows that closed, judged."""
        self.windows.add(times_ms, *columns)
        return self._judged(self.windows.close())

    def flush(self) -> list[Closing[V]]:
        """Close every open window: the end of a bounded history."""
        return self._judged(self.windows.flush())

    def _judged(self, closed: list[ClosedWindow[V]]) -> list[Closing[V]]:
        closings = []
        for window in closed:
            figures = window.value.figures()
            closings.append(Closing(window, figures,
                                    self.alerts.evaluate(window.start_ms, window.end_ms, figures)))
        return closings

    def to_state(self) -> dict[str, Any]:
        return {"windows": self.windows.to_state(), "alerts": self.alerts.to_state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the windows and rules' states from a checkpoint; ValueError
        if the windows were cut at other lengths than these."""
        self.windows = self.windows.restored(state["windows"], self.load)
        self.alerts.restore(state["alerts"])
