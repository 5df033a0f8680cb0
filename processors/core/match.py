"""Replay's join: whole histories of y_true and y_pred matched by id at once,
by column, with no object per row.

It keeps the live join's rules (`core.join.IdJoin`): the predictions go
through the same duplicate rule (`core.duplicates`) in the same order, the
first y_true of an id counts, a y_true without prediction gives no row, and
a pair whose absolute error overflows is rejected, not written as `inf`.
Unlike the live join it has no window: everything read is matched.
Pure: values in, rows out.
"""

from __future__ import annotations

import itertools
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

import numpy as np

from nnmon.processors.core.duplicates import SeenIds
from nnmon.processors.core.join import Half
from nnmon.processors.core.rows import Rows

T = TypeVar("T")


@dataclass(slots=True)
class ChunkValues:
    """One chunk's events of one stream as the join needs them: each one's
    key (a y_true's id, a y_pred's features id), value and offset."""

    event_ms: int  # when the broker stored the chunk
    offsets: Sequence[int]
    keys: list[str]
    values: list[float]


@dataclass
class Matched:
    rows: Rows
    unmatched: dict[str, Half]  # y_true with no prediction, in the order read
    # Predictions stored at or after `since_ms` whose y_true was not read: it
    # may come later, so they wait in the join of a processor carrying on.
    waiting_predictions: dict[str, Half] = field(default_factory=dict)
    newest_ms: int = 0  # the newest chunk time of the y_true read
    overflowing: list[str] = field(default_factory=list)  # ids rejected: their error overflows
    refused: int = 0  # predictions the duplicate rule refused


def match(truths: list[ChunkValues], predictions: list[ChunkValues], since_ms: int,
          seen: SeenIds) -> Matched:
    """Every y_true of `truths` that has a prediction in `predictions` (one
    `seen` admits) gives one row, in y_true order."""
    predictions, refused = _admitted(predictions, seen)
    ids, y_true = _chained(truths)
    truth_ids = set(ids)
    if len(truth_ids) < len(ids):  # a y_true read twice: its first counts, where it came first
        truth_of = _first_values(truths)
        ids = list(dict.fromkeys(ids))
        y_true = [truth_of[i] for i in ids]
    prediction_of = _first_values(predictions)
    y_pred = list(map(prediction_of.get, ids))
    if None in y_pred:  # y_true with no prediction: no row
        matched = [value is not None for value in y_pred]
        ids, y_true = _compress(ids, matched), _compress(y_true, matched)
        y_pred = _compress(y_pred, matched)
    stored_ms = list(map(_first_times(predictions).__getitem__, ids))
    rows, overflowing = _finite_rows(Rows.joined(ids, y_true, cast(list[float], y_pred), stored_ms))
    unmatched = _first_halves(truths, prediction_of) if len(ids) < len(truth_ids) else {}
    waiting = {} if len(ids) == len(prediction_of) else {
        i: half for i, half in _first_halves(predictions, truth_ids).items() if half.event_ms >= since_ms}
    newest = max((v.event_ms for v in truths if v.keys), default=0)
    return Matched(rows, unmatched, waiting, newest, overflowing, refused)


def _admitted(read: list[ChunkValues], seen: SeenIds) -> tuple[list[ChunkValues], int]:
    """What `seen` admits of `read`, in order, and how many it refused."""
    admitted, refused = [], 0
    for values in read:
        keep = seen.first_times(values.keys, values.event_ms)
        if all(keep):
            admitted.append(values)
            continue
        refused += keep.count(False)
        admitted.append(ChunkValues(values.event_ms, _compress(list(values.offsets), keep),
                                    _compress(values.keys, keep), _compress(values.values, keep)))
    return admitted, refused


def _chained(read: list[ChunkValues]) -> tuple[list[str], list[float]]:
    """All keys and all values read, in the order read."""
    return (list(itertools.chain.from_iterable(v.keys for v in read)),
            list(itertools.chain.from_iterable(v.values for v in read)))


def _first_values(read: list[ChunkValues]) -> dict[str, float]:
    """Each key's value where it was first read (as the live join does, a
    later duplicate does not count). Built backwards, so that the first
    value is the one left."""
    keys = itertools.chain.from_iterable(reversed(v.keys) for v in reversed(read))
    values = itertools.chain.from_iterable(reversed(v.values) for v in reversed(read))
    return dict(zip(keys, values))


def _first_times(read: list[ChunkValues]) -> dict[str, int]:
    """Each key's chunk time where it was first read."""
    keys = itertools.chain.from_iterable(reversed(v.keys) for v in reversed(read))
    times = itertools.chain.from_iterable(itertools.repeat(v.event_ms, len(v.keys)) for v in reversed(read))
    return dict(zip(keys, times))


def _first_halves(read: list[ChunkValues], without: Container[str]) -> dict[str, Half]:
    """Each key not in `without`, with its value, offset and time where it was first read."""
    halves: dict[str, Half] = {}
    for values in read:
        for offset, key, value in zip(values.offsets, values.keys, values.values):
            if key not in without and key not in halves:
                halves[key] = Half(value, offset, values.event_ms)
    return halves


def _finite_rows(rows: Rows) -> tuple[Rows, list[str]]:
    """The rows whose absolute error is finite, and the ids of the others."""
    finite = np.isfinite(rows.absolute_error)
    if finite.all():
        return rows, []
    kept = finite.tolist()
    columns = (rows.ids, rows.y_true, rows.y_pred, rows.absolute_error, rows.prediction_ms)
    return (Rows(*(_compress(column, kept) for column in columns)),
            [i for i, ok in zip(rows.ids, kept) if not ok])


def _compress(column: list[T], keep: list[bool]) -> list[T]:
    return list(itertools.compress(column, keep))
