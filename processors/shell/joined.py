"""The shell shared by `metric` and `plot`: read y_true and y_pred, join them
by id, and hand the joined pairs to a view (the CSV, the histogram).

Checkpoint order, so a kill at any moment loses nothing and doubles nothing:
1. the view makes what it wrote durable (`sync`);
2. the checkpoint file stores the view's state, the pending join state and
   the last offsets read, atomically;
3. the consumer offsets are stored on the broker, for people and tools.
On start the processor restores the checkpoint and reads on just after its
offsets. With no checkpoint, the view is rebuilt from the streams' start.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import rstream

from processors import checkpoint
from processors.config import PipelineConfig
from processors.counts import CountsFile
from processors.intake import Intake
from processors.join import Half, IdJoin, Pair, Side
from processors.rates import RateLog
from processors.runtime import keep_running, release_free_memory, sleep_unless_stopped
from streams import chunks, codec
from streams.connection import Watch, open_consumer, open_producer
from streams.publisher import ConfirmedPublisher
from streams.subscription import Record, RecordReader, after, last_position
from streams.topology import declare_streams

# How long a y_true may wait, after it was read, for y_pred to catch up
# before it is joined anyway (and waits in memory): longer than a model's lag
# at full speed (1-2 s), far shorter than the join window.
TRUTH_HOLD_S = 5.0
READ_BATCH = 1_000
TRICKLE = 100  # records in a batch: fewer, and a processor with rest_s rests


class ViewLost(Exception):
    """The view's output no longer matches its checkpoint: rebuild it."""


class View(Protocol):
    """Where joined pairs go."""

    def write(self, pairs: list[Pair]) -> None: ...

    def sync(self) -> None:
        """Make everything written so far durable."""

    def state(self) -> dict[str, Any]:
        """What the view needs to resume, stored in the checkpoint."""

    def close(self) -> None:
        """Let go of files; the view may be reopened from a checkpoint."""


@dataclass(frozen=True)
class JoinLimits:
    """Bounds of the pending join state: event-time window and count per side."""

    window_s: float = 3600.0
    max_pending: int = 100_000


async def run_joined(
    config: PipelineConfig,
    stop: asyncio.Event,
    processor: str,
    open_view: Callable[[dict[str, Any] | None], View],
    limits: JoinLimits,
    log: logging.Logger,
    after_batch: Callable[[bool], Awaitable[None]] | None = None,
    checkpoint_every_s: float = 1.0,
    publish_rejects: bool = False,
    rest_s: float = 0.0,
) -> None:
    """Run until `stop`; `after_batch(idle)` runs after every loop turn.
    With `publish_rejects`, unusable messages are copied to the rejected
    stream (one processor per pipeline should, or each reject shows twice).
    With `rest_s`, a batch of a mere trickle of records is followed by a rest
    of that long, so that what comes next is read in one big batch: for a
    view that is redrawn every few seconds, not one that must be up to the
    millisecond. Under load batches are big, there is no rest, and the
    processor keeps up. Nor is there a rest while records wait in the
    reader: catching up, a batch can be small where the merge stops a run,
    and plot rested 2 s in 8 s over a backlog of 200,000 events.

    When the broker goes away, everything since the last checkpoint is
    dropped (the view is reopened from it) and reading resumes from there
    once the broker is back.
    """
    names = config.names
    streams = (names.y_true, names.y_pred)
    path = config.checkpoint_path(processor)
    intake = Intake(log, processor)
    name = names.consumer(processor)
    rate = RateLog(log, "joined")
    counts = CountsFile(config.logs_dir, processor)

    async def attempt(watch: Watch) -> None:
        intake.forget_rejects()  # anything not yet reported will be read again
        fresh = not path.exists()
        join, offsets, view = _restore(checkpoint.load(path, streams), streams, open_view, limits, log)
        try:
            connection = config.connection_name(processor)
            async with (
                open_consumer(config.broker, connection, watch) as consumer,
                open_producer(config.broker, connection, watch) as producer,
                RecordReader(lambda: open_consumer(config.broker, connection, watch)) as reader,
            ):
                await declare_streams(consumer, streams + (names.rejected,), config.retention)
                reject_publisher = ConfirmedPublisher(producer, None, watch)
                if await _ahead_of_streams(consumer, offsets):
                    log.warning("the checkpoint is past the end of the streams (were they deleted and "
                                "created again?): rebuilding the view from the start of the streams")
                    view.close()
                    join, offsets, view = _restore(None, streams, open_view, limits, log)
                for stream, read in zip(streams, (chunks.read_truths, chunks.read_predictions)):
                    await reader.subscribe(stream, after(offsets[stream]), name, read)
                # Truth is published a moment before its prediction: let it
                # wait on the broker, not in the join's memory.
                reader.follow(names.y_true, names.y_pred, TRUTH_HOLD_S)
                watch.connected = True
                if fresh:
                    log.info("no checkpoint at %s: building the view from the start of the streams", path)
                log.info("joining %s and %s from offsets %s", *streams,
                         {s: "first" if o is None else o + 1 for s, o in offsets.items()})

                async def save_checkpoint() -> None:
                    if publish_rejects:
                        await intake.publish_rejects(reject_publisher, names.rejected)
                    else:
                        intake.forget_rejects()  # logged and counted only
                    view.sync()
                    state = {"join": join.to_state(), "view": view.state()}
                    checkpoint.save(path, checkpoint.Checkpoint(dict(offsets), state))
                    for stream, offset in offsets.items():
                        if offset is not None:
                            await consumer.store_offset(stream, name, offset)

                def totals() -> dict[str, int]:
                    return {"processed": rate.total, "rejected": intake.rejected,
                            "expired": join.counts.expired}

                last_checkpoint = time.monotonic()
                unsaved = False
                while not stop.is_set():
                    watch.check()
                    records = await reader.next_batch(READ_BATCH, timeout=0.2)
                    pairs = []
                    for record in records:
                        pair = _join_record(record, names.y_true, join, intake)
                        if pair is not None:
                            pairs.append(pair)
                        offsets[record.stream] = record.offset
                        unsaved = True
                    if pairs:
                        view.write(pairs)
                        rate.add(len(pairs))
                        # A low estimate of the lag (its 10th percentile in
                        # this batch): measured to keep both sides' pending
                        # small, where the median left predictions waiting.
                        lags = sorted(pair.prediction_lag_ms for pair in pairs)
                        reader.lead(names.y_true, lags[len(lags) // 10])
                    expired = join.expire()
                    intake.reject_expired(expired, {Side.TRUTH: names.y_true, Side.PREDICTION: names.y_pred})
                    if expired:
                        log.warning("%d events expired unmatched (%d so far), e.g. %s %s", len(expired),
                                    join.counts.expired, expired[0].side.value, expired[0].id)
                    rate.maybe_log(lambda: f"{join.pending_count()} pending, {join.counts.expired} expired, "
                                           f"{intake.rejected} rejected")
                    counts.update(totals())
                    if after_batch is not None:
                        await after_batch(not records)
                    if rest_s and 0 < len(records) < TRICKLE and reader.queued() < TRICKLE:
                        await sleep_unless_stopped(stop, rest_s)
                    if unsaved and time.monotonic() - last_checkpoint >= checkpoint_every_s:
                        await save_checkpoint()
                        release_free_memory()  # what the batches since the last checkpoint freed
                        last_checkpoint = time.monotonic()
                        unsaved = False
                await save_checkpoint()
                counts.update(totals(), force=True)
                log.info("stopped: %d joined, %d pending, %d expired, %d rejected", join.counts.joined,
                         join.pending_count(), join.counts.expired, intake.rejected)
        finally:
            view.close()

    await keep_running(attempt, stop, log)


async def _ahead_of_streams(consumer: rstream.Consumer, offsets: dict[str, int | None]) -> bool:
    """Whether an offset read before is past what its stream holds now."""
    for stream, offset in offsets.items():
        if offset is not None:
            end = await last_position(consumer, stream)
            if end is None or end.offset < offset:
                return True
    return False


def _join_record(record: Record, truth_stream: str, join: IdJoin, intake: Intake) -> Pair | None:
    """Feed one y_true or y_pred record to the join; the pair it completes, if any."""
    if record.stream == truth_stream:
        truth = intake.decode(record, codec.TruthEvent)
        if truth is None:
            return None
        side, event_id, value = Side.TRUTH, truth.id, truth.y_true
    else:
        prediction = intake.decode(record, codec.PredictionEvent)
        if prediction is None:
            return None
        side, event_id, value = Side.PREDICTION, prediction.features_id, prediction.y_pred
    if join.seen(side, event_id):
        intake.reject(record, f"duplicate {side.value} for id {event_id}")
        return None
    # The join window runs on the broker's clock (when it stored the chunk),
    # not on the events' own creation_time, which any publisher can set wrong.
    pair = join.add(side, event_id, Half(value, record.offset, record.timestamp_ms))
    if pair is not None and not math.isfinite(pair.absolute_error):
        intake.reject(record, f"the absolute error for id {event_id} overflows")
        return None
    return pair


def _restore(
    saved: checkpoint.Checkpoint | None,
    streams: tuple[str, ...],
    open_view: Callable[[dict[str, Any] | None], View],
    limits: JoinLimits,
    log: logging.Logger,
) -> tuple[IdJoin, dict[str, int | None], View]:
    """The join, offsets and view a checkpoint describes; fresh ones (so the
    view is rebuilt from the streams' start) without a usable checkpoint."""
    window_ms = int(limits.window_s * 1000)
    if saved is not None:
        try:
            join = IdJoin.from_state(saved.state["join"], window_ms, limits.max_pending)
            offsets = {s: _offset(saved.streams[s]) for s in streams}
            return join, offsets, open_view(saved.state["view"])
        except ViewLost as lost:
            log.warning("%s: rebuilding the view from the start of the streams", lost)
        except (KeyError, TypeError, ValueError) as error:
            log.warning("damaged checkpoint (%r): rebuilding the view from the start of the streams", error)
    join = IdJoin(window_ms=window_ms, max_pending=limits.max_pending)
    return join, {stream: None for stream in streams}, open_view(None)


def _offset(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"offset {value!r} in checkpoint")
