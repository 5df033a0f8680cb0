"""Replaying history: re-join y_true and y_pred from a point of the y_true
stream (the views are rebuilt from the result by `rebuild`).

The replay reads y_true from the start position up to the end the stream had
when the replay began (or `to_offset`), and y_pred from shortly before the
first of those y_true up to its own end: a prediction is always written after
its features, and so after its y_true. Every y_true read that has a
prediction gives exactly one row, in y_true order.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import rstream
from rstream import ConsumerOffsetSpecification, OffsetType

from nnmon.processors.core.duplicates import SeenIds
from nnmon.processors.core.join import Half
from nnmon.processors.core.match import ChunkValues, match
from nnmon.processors.core.rows import Rows
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import UsageError, without_cycle_collection
from nnmon.processors.shell.duplicates import seen_ids
from nnmon.processors.shell.intake import Intake
from nnmon.processors.shell.joined import HandOver
from nnmon.streams.client.connection import BrokerError, Watch, open_consumer
from nnmon.streams.client.rstream_private import Consumer
from nnmon.streams.events import chunks, codec
from nnmon.streams.read.reader import Position, last_position, position_at, unsubscribe_quietly
from nnmon.streams.wire.chunk import Chunk

log = logging.getLogger("nnmon.replay")

# How far before the first replayed y_true to look for predictions: more
# than any clock difference between the broker's chunk times.
PREDICTION_LOOKBACK_MS = 60_000

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
    seen: SeenIds = field(default_factory=seen_ids)  # the predictions read, through the duplicate rule

    def hand_over(self) -> HandOver:
        """Where the replay leaves the join, for a processor to carry on from."""
        return HandOver(dict(self.ends), self.unmatched, self.waiting_predictions, self.newest_ms,
                        self.seen)


FIRST = ConsumerOffsetSpecification(OffsetType.FIRST)


async def replay(
    config: PipelineConfig,
    start: ConsumerOffsetSpecification,
    to_offset: int | None = None,
    progress: Progress | None = None,
) -> ReplayResult:
    names = config.names
    with without_cycle_collection(), Watch() as watch:
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
        truths.append(chunk_values(chunk, limit, chunks.truth_values, truths_one_by_one))
        if progress is not None:
            progress(min(chunk.last_offset, limit) - first.offset + 1,
                     limit - first.offset + 1)

    def on_predictions(chunk: Chunk) -> None:
        predictions.append(chunk_values(chunk, pred_limit, chunks.prediction_values, predictions_one_by_one))

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


def chunk_values(chunk: Chunk, limit: int, at_once: ReadAtOnce, one_by_one: ReadOneByOne) -> ChunkValues:
    """The chunk's events up to offset `limit`: all at once (see
    `nnmon.streams.events.chunks`) when it can, else message by message."""
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
    return ChunkValues(chunk.timestamp_ms, offsets, keys, values)


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
        seen = seen_ids()
        matched = match(self.truths, self.predictions, self.first.timestamp_ms, seen)
        if matched.refused:
            log.warning("left out %d predictions the duplicate rule refused (repeats of an id)",
                        matched.refused)
        if matched.overflowing:
            log.warning("rejected %d pairs whose absolute error overflows, the first of id %s",
                        len(matched.overflowing), matched.overflowing[0])
        return ReplayResult(matched.rows, matched.unmatched, self.ends, self.first.offset,
                            self.rejected + len(matched.overflowing) + matched.refused,
                            matched.waiting_predictions, newest_ms=matched.newest_ms, seen=seen)


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
