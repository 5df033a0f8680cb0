"""Tumbling windows of prediction time over joined rows.

A row counts for the window of its prediction time (when the model spoke,
not when its truth came). Windows are `window_ms` long, aligned to the Unix
epoch. The newest prediction time seen is the watermark: a window closes
once the watermark is more than `lateness_ms` past its end, and it is then
final. A row whose window has closed is late: it counts for no window (it
is in the metric log all the same), and the late rows are counted, per
closed window (those that came since the window before it closed) and in
all. Windows with no rows between two with rows close too, empty: the data
stopped there, and a rule can say so.

Pure: times and values in, closed windows out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmon.processors.core.quality import Figures, Quality

# A gap of more empty windows than this (a clock far off, a pipeline stopped
# for weeks) closes as one jump, with only its first MAX_EMPTY windows
# written: enough to show the gap, not a flood.
MAX_EMPTY = 1_000


@dataclass(frozen=True)
class ClosedWindow:
    start_ms: int
    end_ms: int
    quality: Quality
    late_rows: int  # rows that came late since the window before this one closed

    def figures(self) -> Figures:
        return self.quality.figures()


class Windows:
    """Open windows by start; feed with `add`, take what is final with `close`."""

    def __init__(self, window_ms: int, lateness_ms: int) -> None:
        if window_ms <= 0 or lateness_ms < 0:
            raise ValueError("a window must be longer than 0 and lateness at least 0")
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.open: dict[int, Quality] = {}
        self.watermark_ms: int | None = None  # the newest prediction time seen
        self.closed_before_ms: int | None = None  # every window starting before this is closed
        self.late_rows = 0  # in all
        self._late_since_close = 0

    def add(self, times_ms: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> int:
        """Count rows (prediction times in ms, truths, predictions) for
        their windows; how many of them were late."""
        if times_ms.size == 0:
            return 0
        starts = times_ms - times_ms % self.window_ms
        # A row is late when its window had closed by the time it came, in
        # row order: closed by an earlier `close`, or left behind by the
        # watermark of the rows before it, as if windows closed after every
        # row. So where the batches split makes no difference.
        floor = np.iinfo(np.int64).min if self.watermark_ms is None else self.watermark_ms
        seen_before = np.maximum(np.concatenate(([floor], np.maximum.accumulate(times_ms)[:-1])), floor)
        late_mask = starts + (self.window_ms + self.lateness_ms) < seen_before
        if self.closed_before_ms is not None:
            late_mask |= starts < self.closed_before_ms
        late = int(np.count_nonzero(late_mask))
        if late:
            on_time = ~late_mask
            starts, y_true, y_pred = starts[on_time], y_true[on_time], y_pred[on_time]
            self.late_rows += late
            self._late_since_close += late
        if starts.size:
            first = int(starts[0])
            if (starts == first).all():  # the common case: a batch within one window
                self._window(first).add(y_true, y_pred)
            else:  # rows sorted by window (stable: each window's in their order), cut where it changes
                order = np.argsort(starts, kind="stable")
                starts, y_true, y_pred = starts[order], y_true[order], y_pred[order]
                cuts = np.flatnonzero(np.diff(starts)) + 1
                for begin, end in zip([0, *cuts.tolist()], [*cuts.tolist(), starts.size]):
                    self._window(int(starts[begin])).add(y_true[begin:end], y_pred[begin:end])
        newest = int(times_ms.max())
        if self.watermark_ms is None or newest > self.watermark_ms:
            self.watermark_ms = newest
        return late

    def _window(self, start: int) -> Quality:
        quality = self.open.get(start)
        if quality is None:
            quality = self.open[start] = Quality()
        return quality

    def close(self) -> list[ClosedWindow]:
        """The windows the watermark has left behind, oldest first, each once."""
        if self.watermark_ms is None:
            return []
        closed: list[ClosedWindow] = []
        start = self.closed_before_ms if self.closed_before_ms is not None else min(self.open, default=None)
        empty_run = 0
        while start is not None and start + self.window_ms + self.lateness_ms < self.watermark_ms:
            quality = self.open.pop(start, None)
            if quality is None:
                empty_run += 1
                if empty_run > MAX_EMPTY:  # jump to the next window with rows, or to the watermark's
                    start = min(self.open, default=self._start_of(self.watermark_ms))
                    self.closed_before_ms = start
                    continue
                quality = Quality()
            else:
                empty_run = 0
            closed.append(ClosedWindow(start, start + self.window_ms, quality, self._late_since_close))
            self._late_since_close = 0
            start += self.window_ms
            self.closed_before_ms = start
        return closed

    def _start_of(self, ms: int) -> int:
        return ms - ms % self.window_ms

    def flush(self) -> list[ClosedWindow]:
        """Every window, as if the watermark had passed them all: for a
        bounded history (a reference, `nnmon check`) that is read to its end."""
        if self.open:
            self.watermark_ms = max(self.open) + self.window_ms + self.lateness_ms + 1
        return self.close()

    def open_windows(self) -> list[tuple[int, Figures]]:
        """The open windows' running figures, oldest first."""
        return [(start, self.open[start].figures()) for start in sorted(self.open)]

    def to_state(self) -> dict[str, Any]:
        return {
            "window_ms": self.window_ms, "lateness_ms": self.lateness_ms,
            "watermark_ms": self.watermark_ms, "closed_before_ms": self.closed_before_ms,
            "late_rows": self.late_rows, "late_since_close": self._late_since_close,
            "open": [[start, quality.to_state()] for start, quality in sorted(self.open.items())],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], window_ms: int, lateness_ms: int) -> Windows:
        """The windows `state` describes. Raises ValueError if they were cut
        at another length or lateness than asked now: then the view starts
        afresh (its windows would not line up)."""
        if int(state["window_ms"]) != window_ms or int(state["lateness_ms"]) != lateness_ms:
            raise ValueError("the windows were cut at another --window or --allowed-lateness")
        windows = cls(window_ms, lateness_ms)
        windows.watermark_ms = _time_or_none(state["watermark_ms"])
        windows.closed_before_ms = _time_or_none(state["closed_before_ms"])
        windows.late_rows = int(state["late_rows"])
        windows._late_since_close = int(state["late_since_close"])
        windows.open = {int(start): Quality.from_state(q) for start, q in state["open"]}
        return windows


def _time_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
