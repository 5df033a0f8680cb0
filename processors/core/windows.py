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

What a window holds is any mergeable value (`WindowValue`): the quality
of joined rows (`core.quality.Quality`), the drift of columns
(`core.drift.Columns`).

Pure: times and values in, closed windows out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

import numpy as np

# A gap of more empty windows than this (a clock far off, a pipeline stopped
# for weeks) closes as one jump, with only its first MAX_EMPTY windows
# written: enough to show the gap, not a flood.
MAX_EMPTY = 1_000



class WindowValue(Protocol):
    """What a window holds: rows added as arrays (one row per item of their
    first axis, as many arrays as the value takes), merged with another of
    its kind, kept as state."""

    @property
    def add(self) -> Callable[..., None]: ...

    def merge(self, other: Self) -> None: ...

    def to_state(self) -> Any: ...


V = TypeVar("V", bound=WindowValue)


@dataclass(frozen=True)
class ClosedWindow(Generic[V]):
    start_ms: int
    end_ms: int
    value: V
    late_rows: int  # rows that came late since the window before this one closed


class Windows(Generic[V]):
    """Open windows by start, each holding a value `empty()` makes; feed
    with `add`, take what is final with `close`."""

    def __init__(self, window_ms: int, lateness_ms: int, empty: Callable[[], V]) -> None:
        if window_ms <= 0 or lateness_ms < 0:
            raise ValueError("a window must be longer than 0 and lateness at least 0")
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.empty = empty
        self.open: dict[int, V] = {}
        self.watermark_ms: int | None = None  # the newest prediction time seen
        self.closed_before_ms: int | None = None  # every window starting before this is closed
        self.late_rows = 0  # in all
        self._late_since_close = 0

    def add(self, times_ms: np.ndarray, *columns: np.ndarray) -> int:
        """Count rows (their prediction times in ms, and the columns the
        windows' values take) for their windows; how many of them were late."""
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
            starts, columns = starts[on_time], tuple(column[on_time] for column in columns)
            self.late_rows += late
            self._late_since_close += late
        if starts.size:
            first = int(starts[0])
            if (starts == first).all():  # the common case: a batch within one window
                self._window(first).add(*columns)
            else:  # rows sorted by window (stable: each window's in their order), cut where it changes
                order = np.argsort(starts, kind="stable")
                starts, columns = starts[order], tuple(column[order] for column in columns)
                cuts = np.flatnonzero(np.diff(starts)) + 1
                for begin, end in zip([0, *cuts.tolist()], [*cuts.tolist(), starts.size]):
                    self._window(int(starts[begin])).add(*(column[begin:end] for column in columns))
        newest = int(times_ms.max())
        if self.watermark_ms is None or newest > self.watermark_ms:
            self.watermark_ms = newest
        return late

    def _window(self, start: int) -> V:
        value = self.open.get(start)
        if value is None:
            value = self.open[start] = self.empty()
        return value

    def close(self) -> list[ClosedWindow[V]]:
        """The windows the watermark has left behind, oldest first, each once."""
        if self.watermark_ms is None:
            return []
        closed: list[ClosedWindow[V]] = []
        start = self.closed_before_ms if self.closed_before_ms is not None else min(self.open, default=None)
        empty_run = 0
        while start is not None and start + self.window_ms + self.lateness_ms < self.watermark_ms:
            value = self.open.pop(start, None)
            if value is None:
                empty_run += 1
                if empty_run > MAX_EMPTY:  # jump to the next window with rows, or to the watermark's
                    start = min(self.open, default=self._start_of(self.watermark_ms))
                    self.closed_before_ms = start
                    continue
                value = self.empty()
            else:
                empty_run = 0
            closed.append(ClosedWindow(start, start + self.window_ms, value, self._late_since_close))
            self._late_since_close = 0
            start += self.window_ms
            self.closed_before_ms = start
        return closed

    def _start_of(self, ms: int) -> int:
        return ms - ms % self.window_ms

    def flush(self) -> list[ClosedWindow[V]]:
        """Every window, as if the watermark had passed them all: for a
        bounded history (a reference, `nnmon check`) that is read to its end."""
        if self.open:
            self.watermark_ms = max(self.open) + self.window_ms + self.lateness_ms + 1
        return self.close()

    def open_windows(self) -> list[tuple[int, V]]:
        """The open windows' running values, oldest first."""
        return [(start, self.open[start]) for start in sorted(self.open)]

    def to_state(self) -> dict[str, Any]:
        return {
            "window_ms": self.window_ms, "lateness_ms": self.lateness_ms,
            "watermark_ms": self.watermark_ms, "closed_before_ms": self.closed_before_ms,
            "late_rows": self.late_rows, "late_since_close": self._late_since_close,
            "open": [[start, value.to_state()] for start, value in sorted(self.open.items())],
        }

    def restored(self, state: dict[str, Any], load: Callable[[Any], V]) -> Windows[V]:
        """Windows like these, as `state` describes them (`load` reads a
        value's state). Raises ValueError if they were cut at another length
        or lateness than these: then the view starts afresh (its windows
        would not line up)."""
        if int(state["window_ms"]) != self.window_ms or int(state["lateness_ms"]) != self.lateness_ms:
            raise ValueError("the windows were cut at another --window or --allowed-lateness")
        windows = Windows(self.window_ms, self.lateness_ms, self.empty)
        windows.watermark_ms = _time_or_none(state["watermark_ms"])
        windows.closed_before_ms = _time_or_none(state["closed_before_ms"])
        windows.late_rows = int(state["late_rows"])
        windows._late_since_close = int(state["late_since_close"])
        windows.open = {int(start): load(value) for start, value in state["open"]}
        return windows


def _time_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
