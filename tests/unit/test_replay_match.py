"""Replay's join of whole chunks (`ReadHistory.match`), against joining
event by event as the live join keeps them: the first y_true and y_pred of
an id count, a y_true without prediction waits, and so does a prediction
without its y_true if it came after the replay's first y_true."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from nnmon.processors.core.join import Half
from nnmon.processors.core.match import ChunkValues
from nnmon.processors.core.rows import Rows, format_rows
from nnmon.processors.replay.history import ReadHistory
from nnmon.streams.read.reader import Position

FIRST_MS = 1_000
keys = st.sampled_from(["a", "b", "c", "d", "e", "f"])  # few: duplicates and misses are common
values = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e308, -1e308])


@st.composite
def history(draw: st.DrawFn) -> list[ChunkValues]:
    """Chunks of one stream, back to back, each with its time."""
    # Times before, at and after the replay's first y_true's.
    read, offset, event_ms = [], 0, draw(st.sampled_from([FIRST_MS - 200, FIRST_MS - 100, FIRST_MS]))
    for events in draw(st.lists(st.lists(st.tuples(keys, values), max_size=4), max_size=5)):
        read.append(ChunkValues(event_ms, range(offset, offset + len(events)),
                                [k for k, _ in events], [v for _, v in events]))
        offset += len(events) + 1  # an offset between chunks holds something else
        event_ms += draw(st.sampled_from([0, 100]))
    return read


def event_by_event(truths: list[ChunkValues], predictions: list[ChunkValues]) -> tuple[
        Rows, dict[str, Half], dict[str, Half], int]:
    """Rows, y_true without prediction, waiting predictions and the events
    rejected (pairs whose error overflows, repeated predictions), one event
    at a time."""
    def first_halves(read: list[ChunkValues]) -> dict[str, Half]:
        halves: dict[str, Half] = {}
        for chunk in read:
            for offset, key, value in zip(chunk.offsets, chunk.keys, chunk.values):
                halves.setdefault(key, Half(value, offset, chunk.event_ms))
        return halves

    truth_of, prediction_of = first_halves(truths), first_halves(predictions)
    pairs = [(i, t.value, prediction_of[i].value) for i, t in truth_of.items() if i in prediction_of]
    finite = [(i, t, p) for i, t, p in pairs if math.isfinite(abs(t - p))]
    rows = Rows([i for i, _, _ in finite], [t for _, t, _ in finite], [p for _, _, p in finite],
                [abs(t - p) for _, t, p in finite])
    unmatched = {i: h for i, h in truth_of.items() if i not in prediction_of}
    waiting = {i: h for i, h in prediction_of.items() if i not in truth_of and h.event_ms >= FIRST_MS}
    repeated = sum(len(chunk.keys) for chunk in predictions) - len(prediction_of)
    return rows, unmatched, waiting, len(pairs) - len(finite) + repeated


@given(history(), history(), st.integers(0, 3))
def test_whole_chunks_join_as_event_by_event(
    truths: list[ChunkValues], predictions: list[ChunkValues], rejected: int
) -> None:
    result = ReadHistory({}, Position(0, FIRST_MS), truths, predictions, rejected).match()
    rows, unmatched, waiting, overflowing = event_by_event(truths, predictions)
    assert format_rows(result.rows) == format_rows(rows)
    assert result.unmatched == unmatched
    assert list(result.unmatched) == list(unmatched)  # in the order read
    assert result.waiting_predictions == waiting
    assert result.rejected == rejected + overflowing
    assert result.newest_ms == max((c.event_ms for c in truths if c.keys), default=0)


def test_nothing_read_nothing_joined() -> None:
    result = ReadHistory({}, None).match()
    assert len(result.rows) == 0 and result.unmatched == {} and result.first_read is None
