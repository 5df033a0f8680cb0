"""Replaying history: re-join y_true and y_pred from a point of the y_true
stream and rebuild the views (the CSV, the histogram) from the result.

The replay reads y_true from the start position up to the end the stream had
when the replay began (or `to_offset`), and y_pred from shortly before the
first of those y_true up to its own end: a prediction is always written after
its features, and so after its y_true. Every y_true read that has a
prediction gives exactly one row, in y_true order.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
from collections.abc import Callable, Container, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import rstream
from rstream import ConsumerOffsetSpecification, OffsetType

from processors import checkpoint
from processors.checkpoint import Checkpoint
from processors.config import PipelineConfig
from processors.csv_log import write_csv
from processors.drawing import draw_png
from processors.histogram import ErrorHistogram
from processors.intake import Intake
from processors.join import Half, IdJoin, Side
from processors.joined import JoinLimits
from processors.lock import view_lock
from processors.rows import Rows
from processors.runtime import UsageError, without_cycle_collection
from streams import chunks, codec
from streams.chunks import Chunk
from streams.connection import BrokerError, Watch, open_consumer
from streams.consumer import Consumer
from streams.subscription import Position, last_position, position_at, unsubscribe_quietly

log = logging.getLogger("nnmon.replay")

# How far before the first replayed y_true to look for predictions: more
# than any clock difference between the broker's chunk times.
PREDICTION_LOOKBACK_MS = 60_000

T = TypeVar("T")
Progress = Callable[[int, int], None]  # (records read, records expected)
# A chunk's keys and values read at once (None if it cannot be), or one by one.
ReadAtOnce = Callable[[Chunk], tuple[list[str], list[float]] | None]
ReadOneByOne = Callable[[Chunk], list[tuple[int, str, float]]]  # (offset, key, value)


@dataclass
class ReplayResult:
    rows: Rows
    unmatched: dict[str, Half]  # y_true read with no prediction, in order
    ends: dict[str, int | None]  # per stream, the last offset the replay covers
    first_read: int | None  # the first y_true offset read
    rejected: int
    # Predictions read for y_true not (yet) replayed: they wait in the join
    # of a processor that carries on from the replay's end.
    waiting_predictions: dict[str, Half] = field(default_factory=dict)
    newest_ms: int = 0
    notes: list[str] = field(default_factory=list)


FIRST = ConsumerOffsetSpecification(OffsetType.FIRST)


async def replay(
    config: PipelineConfig,
    start: ConsumerOffsetSpecification,
    to_offset: int | None = None,
    progress: Progress | None = None,
) -> ReplayResult:
    names = config.names
    watch = Watch()
    with without_cycle_collection():
        async with open_consumer(config.broker, config.connection_name("replay"), watch) as consumer:
            for stream in (names.y_true, names.y_pred):
                if not await consumer.stream_exists(stream):
                    raise UsageError(f"stream {stream} does not exist: nothing to replay "
                                     "(check --stream-prefix)")
            # y_pred's end first: a prediction is written after its y_true, so
            # every prediction up to that end has its y_true before y_true's end.
            pred_end = await _end(consumer, names.y_pred)
            true_first = await position_at(consumer, names.y_true, FIRST)
            true_end = await _end(consumer, names.y_true)
            notes = _check_range(names.y_true, start, to_offset,
                                 _offset(true_first), _offset(true_end))
            limit = None if true_end is None else true_end.offset
            if limit is not None and to_offset is not None:
                limit = min(to_offset, limit)
            ends = {names.y_true: limit, names.y_pred: _offset(pred_end)}
            if limit is None or start.offset_type is OffsetType.NEXT:
                return ReplayResult(Rows.joined([], [], []), {}, ends, None, 0, notes=notes)
            first = true_first if start.offset_type is OffsetType.FIRST else \
                await position_at(consumer, names.y_true, start)
            read = await _replay_range(consumer, watch, config, first, limit, pred_end, progress)
            # Matched in a thread while the consumer closes: rstream's close
            # sleeps 0.2 s, about as long as matching 200,000 rows takes.
            matching = asyncio.ensure_future(asyncio.to_thread(read.match))
        result = await matching
    result.notes = notes
    return result


def _offset(position: Position | None) -> int | None:
    return None if position is None else position.offset


async def _end(consumer: rstream.Consumer, stream: str) -> Position | None:
    """The stream's last message; None only when it is really empty."""
    end = await last_position(consumer, stream)
    if end is None and await position_at(consumer, stream, FIRST) is not None:
        raise BrokerError(f"RabbitMQ did not say in time where {stream} ends; try again")
    return end


def _check_range(
    stream: str, start: ConsumerOffsetSpecification, to_offset: int | None,
    first: int | None, end: int | None,
) -> list[str]:
    notes = []
    if start.offset_type is OffsetType.OFFSET and start.offset is not None:
        if end is not None and start.offset > end:
            raise UsageError(f"--from-offset {start.offset} is past the end of {stream} (last offset {end})")
        if first is not None and start.offset < first:
            notes.append(f"offsets before {first} of {stream} were removed by retention; "
                         f"replaying from {first}")
    if to_offset is not None and start.offset_type is OffsetType.OFFSET and start.offset is not None \
            and to_offset < start.offset:
        raise UsageError(f"--to-offset {to_offset} is before --from-offset {start.offset}")
    return notes


async def _replay_range(
    consumer: Consumer,
    watch: Watch,
    config: PipelineConfig,
    first: Position | None,
    limit: int,
    pred_end: Position | None,
    progress: Progress | None,
) -> ReadHistory:
    names = config.names
    ends = {names.y_true: limit, names.y_pred: _offset(pred_end)}
    if first is None or first.offset > limit:
        return ReadHistory(ends, None)
    intake = Intake(log, "replay", keep_rejects=False)
    truths: list[ChunkValues] = []
    predictions: list[ChunkValues] = []
    pred_limit = -1 if pred_end is None else pred_end.offset

    def truths_one_by_one(chunk: Chunk) -> list[tuple[int, str, float]]:
        return [(offset, e.id, e.y_true) for offset, e in intake.decode_messages(chunk, codec.TruthEvent)]

    def predictions_one_by_one(chunk: Chunk) -> list[tuple[int, str, float]]:
        return [(offset, e.features_id, e.y_pred)
                for offset, e in intake.decode_messages(chunk, codec.PredictionEvent)]

    def on_truths(chunk: Chunk) -> None:
        truths.append(ChunkValues.read(chunk, limit, chunks.truth_values, truths_one_by_one))
        if progress is not None:
            progress(min(chunk.last_offset, limit) - first.offset + 1,
                     limit - first.offset + 1)

    def on_predictions(chunk: Chunk) -> None:
        predictions.append(ChunkValues.read(chunk, pred_limit, chunks.prediction_values,
                                            predictions_one_by_one))

    # Both streams are read side by side: predictions are kept whole and
    # matched once every truth is read.
    reads = [_read(consumer, watch, names.y_true, first.offset, limit, on_truths)]
    if pred_end is not None:
        since = first.timestamp_ms - PREDICTION_LOOKBACK_MS
        pred_begin = await position_at(consumer, names.y_pred, ConsumerOffsetSpecification(
            OffsetType.TIMESTAMP, since))
        if pred_begin is None and pred_end.timestamp_ms >= since:
            raise BrokerError(f"RabbitMQ did not say in time where to start reading {names.y_pred}")
        if pred_begin is not None and pred_begin.offset <= pred_end.offset:
            reads.append(_read(consumer, watch, names.y_pred, pred_begin.offset, pred_end.offset,
                               on_predictions))
    await asyncio.gather(*reads)
    log.info("read %d y_true from offset %d to %d", sum(len(v.keys) for v in truths), first.offset, limit)
    return ReadHistory(ends, first, truths, predictions, intake.rejected)


@dataclass(slots=True)
class ChunkValues:
    """One chunk's events of one stream as the join needs them: each one's
    key (a y_true's id, a y_pred's features id), value and offset."""

    event_ms: int  # when the broker stored the chunk
    offsets: Sequence[int]
    keys: list[str]
    values: list[float]

    @classmethod
    def read(cls, chunk: Chunk, limit: int, at_once: ReadAtOnce, one_by_one: ReadOneByOne) -> ChunkValues:
        """The chunk's events up to offset `limit`: all at once (see
        `streams.chunks`) when it can, else message by message."""
        offsets: Sequence[int]
        fast = at_once(chunk)
        if fast is not None:
            keys, values = fast
            start = chunk.first_offset + chunk.skip
            offsets = range(start, start + len(keys))
        else:
            decoded = one_by_one(chunk)
            offsets = [offset for offset, _, _ in decoded]
            keys = [key for _, key, _ in decoded]
            values = [value for _, _, value in decoded]
        end = bisect.bisect_right(offsets, limit)
        if end < len(keys):
            offsets, keys, values = offsets[:end], keys[:end], values[:end]
        return cls(chunk.timestamp_ms, offsets, keys, values)


@dataclass
class ReadHistory:
    """What a replay read: y_true and y_pred, chunk by chunk, from `first`
    on; not yet matched."""

    ends: dict[str, int | None]
    first: Position | None
    truths: list[ChunkValues] = field(default_factory=list)
    predictions: list[ChunkValues] = field(default_factory=list)
    rejected: int = 0

    def match(self) -> ReplayResult:
        if self.first is None:
            return ReplayResult(Rows.joined([], [], []), {}, self.ends, None, self.rejected)
        ids, y_true = _chained(self.truths)
        truth_ids = set(ids)
        if len(truth_ids) < len(ids):  # a y_true read twice: its first counts, where it came first
            truth_of = _first_values(self.truths)
            ids = list(dict.fromkeys(ids))
            y_true = [truth_of[i] for i in ids]
        prediction_of = _first_values(self.predictions)
        y_pred = list(map(prediction_of.get, ids))
        if None in y_pred:  # y_true with no prediction: no row
            matched = [value is not None for value in y_pred]
            ids, y_true = _compress(ids, matched), _compress(y_true, matched)
            y_pred = _compress(y_pred, matched)
        rows, overflowing = _finite_rows(Rows.joined(ids, y_true, cast(list[float], y_pred)))
        if overflowing:
            log.warning("rejected %d pairs whose absolute error overflows, the first of id %s",
                        len(overflowing), overflowing[0])
        unmatched = _first_halves(self.truths, prediction_of) if len(ids) < len(truth_ids) else {}
        # Predictions written after the replay's first y_true whose y_true was
        # not replayed: it may come after the replay's end.
        waiting = {} if len(ids) == len(prediction_of) else {
            i: half for i, half in _first_halves(self.predictions, truth_ids).items()
            if half.event_ms >= self.first.timestamp_ms}
        newest = max((v.event_ms for v in self.truths if v.keys), default=0)
        return ReplayResult(rows, unmatched, self.ends, self.first.offset,
                            self.rejected + len(overflowing), waiting, newest_ms=newest)


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


def _first_halves(read: list[ChunkValues], without: Container[str]) -> dict[str, Half]:
    """Each key not in `without`, with its value, offset and time where it was first read."""
    halves: dict[str, Half] = {}
    for values in read:
        for offset, key, value in zip(values.offsets, values.keys, values.values):
            if key not in without and key not in halves:
                halves[key] = Half(value, offset, values.event_ms)
    return halves


def _finite_rows(rows: Rows) -> tuple[Rows, list[str]]:
    """The rows whose absolute error is finite, and the ids of the others
    (as in the live join, a pair whose error overflows is rejected)."""
    finite = np.isfinite(rows.absolute_error)
    if finite.all():
        return rows, []
    kept = finite.tolist()
    columns = (rows.ids, rows.y_true, rows.y_pred, rows.absolute_error)
    return (Rows(*(_compress(column, kept) for column in columns)),
            [i for i, ok in zip(rows.ids, kept) if not ok])


def _compress(column: list[T], keep: list[bool]) -> list[T]:
    return list(itertools.compress(column, keep))


async def _read(
    consumer: Consumer, watch: Watch, stream: str, begin: int, end: int,
    handle: Callable[[Chunk], None],
) -> None:
    """Feed `handle` the chunks that hold offsets `begin` to `end` (whole:
    it leaves out what lies after `end`); both must be offsets the stream
    holds. Raises if the connection goes."""
    reached = asyncio.Event()

    def on_chunk(chunk: Chunk) -> None:
        if reached.is_set():
            return
        handle(chunk)
        if chunk.last_offset >= end:
            reached.set()

    start = ConsumerOffsetSpecification(OffsetType.OFFSET, begin)
    subscription = await consumer.subscribe_chunks(stream, on_chunk, start, initial_credit=50)
    lost = asyncio.ensure_future(watch.lost.wait())
    done = asyncio.ensure_future(reached.wait())
    try:
        await asyncio.wait({lost, done}, return_when=asyncio.FIRST_COMPLETED)
        watch.check()
    finally:
        lost.cancel()
        done.cancel()
        await unsubscribe_quietly(consumer, subscription)


def checkpoint_of(result: ReplayResult, limits: JoinLimits, view_state: dict[str, Any]) -> Checkpoint:
    """The checkpoint a joined processor would have had, had it just read what
    the replay read: its y_true without prediction wait in the join."""
    join = IdJoin(window_ms=int(limits.window_s * 1000), max_pending=limits.max_pending)
    join.newest_ms = max([result.newest_ms, *(h.event_ms for h in result.waiting_predictions.values())])
    join.pending[Side.TRUTH].update(result.unmatched)
    join.pending[Side.PREDICTION].update(result.waiting_predictions)
    join.expire()
    return Checkpoint(dict(result.ends), {"join": join.to_state(), "view": view_state})


async def adopt(config: PipelineConfig, processor: str, saved: Checkpoint) -> None:
    """Make `saved` the processor's checkpoint, and its offsets the ones
    stored on the broker. Call with the processor's view lock held."""
    checkpoint.save(config.checkpoint_path(processor), saved)
    async with open_consumer(config.broker, config.connection_name("replay")) as consumer:
        for stream, offset in saved.streams.items():
            if offset is not None:
                await consumer.store_offset(stream, config.names.consumer(processor), offset)


def histogram_of(rows: Rows) -> ErrorHistogram:
    histogram = ErrorHistogram()
    histogram.add(rows.absolute_error)
    return histogram


async def rebuild_views(
    config: PipelineConfig, result: ReplayResult, out: Path | None, plot: bool, limits: JoinLimits
) -> tuple[Path, Path | None]:
    """Write the replay's CSV (and PNG); returns their paths.

    With `out`, the CSV goes there and the PNG beside it, and the live views
    are left alone. Without, the live CSV and PNG are swapped for the
    replay's, and `metric` (and `plot`) carry on from where the replay ended.
    """
    png = None
    if out is not None:
        write_csv(out, result.rows)
        if plot:
            png = out.with_suffix(".png")
            draw_png(histogram_of(result.rows), png)
        return out, png
    with view_lock(config, "metric"), (view_lock(config, "plot") if plot else nullcontext()):
        # No checkpoint while the CSV is swapped: a crash in between makes
        # metric rebuild from the streams rather than trust a stale length.
        config.checkpoint_path("metric").unlink(missing_ok=True)
        size = write_csv(config.csv_path, result.rows)
        await adopt(config, "metric", checkpoint_of(result, limits, {"csv_bytes": size}))
        if plot:
            histogram = histogram_of(result.rows)
            draw_png(histogram, config.png_path)
            png = config.png_path
            await adopt(config, "plot", checkpoint_of(result, limits, histogram.to_state()))
    return config.csv_path, png
