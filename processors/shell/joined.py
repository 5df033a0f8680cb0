"""The shell shared by `metric` and `plot`: read y_true and y_pred, join them
by id, and hand the joined pairs to a view (the CSV, the histogram).

Checkpoint order, so a kill at any moment loses nothing and doubles nothing:
1. the view makes what it wrote durable (`sync`);
2. the checkpoint file stores the view's state, the pending join state and
   the last offsets read, atomically;
3. the consumer offsets are stored on the broker, for people and tools.
On start the processor restores the checkpoint and reads on just after its
offsets. With no checkpoint, the view is rebuilt from the streams' start.

The checkpoint's format is this module's alone: a replay hands its result
over through `hand_over`, and `nnmon status` reads it through `join_status`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import rstream

from nnmon.processors.core.duplicates import SeenIds
from nnmon.processors.core.join import Half, IdJoin, Pair, Refused, Side
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.rates import RateLog
from nnmon.processors.run.runtime import release_free_memory
from nnmon.processors.run.throttle import Every
from nnmon.processors.shell import checkpoint
from nnmon.processors.shell.counts import CountsFile
from nnmon.processors.shell.duplicates import seen_ids
from nnmon.processors.shell.intake import Intake
from nnmon.streams.client.connection import Watch, open_consumer, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher, Outgoing
from nnmon.streams.client.reconnect import keep_running, sleep_unless_stopped
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import chunks, codec, ids
from nnmon.streams.read.merge import Record
from nnmon.streams.read.reader import RecordReader, after, last_position

# How long a y_true may wait, after it was read, for y_pred to catch up
# before it is joined anyway (and waits in memory): longer than a model's lag
# at full speed (1-2 s), far shorter than the join window.
TRUTH_HOLD_S = 5.0
READ_BATCH = 1_000
TRICKLE = 100  # records in a batch: fewer, and a processor with rest_s rests


class ViewLost(Exception):
    """The view's output no longer matches its checkpoint: rebuild it."""


def resumed(log: logging.Logger, resume: Callable[[checkpoint.Checkpoint], None],
            saved: checkpoint.Checkpoint) -> bool:
    """Whether `resume` took up the checkpoint; False, after saying so, for
    one whose view is lost or that is damaged: the view is then rebuilt."""
    try:
        resume(saved)
        return True
    except ViewLost as lost:
        log.warning("%s: rebuilding the view from the start of the streams", lost)
    except (KeyError, TypeError, ValueError) as error:
        log.warning("damaged checkpoint (%r): rebuilding the view from the start of the streams", error)
    return False


class View(Protocol):
    """Where joined pairs go."""

    def write(self, pairs: list[Pair]) -> None: ...

    def outgoing(self) -> dict[str, list[Outgoing]]:
        """Events (derived facts) to publish, per stream, before the checkpoint."""

    def sync(self) -> None:
        """Make everything written so far durable."""

    def state(self) -> dict[str, Any]:
        """What the view needs to resume, stored in the checkpoint."""

    def close(self) -> None:
        """Let go of files; the view may be reopened from a checkpoint."""


OpenView = Callable[[dict[str, Any] | None], View]  # from its checkpointed state, or afresh
AfterBatch = Callable[[bool], Awaitable[None]]  # called with whether the batch was empty


@dataclass(frozen=True)
class JoinLimits:
    """Bounds of the pending join state: event-time window and count per side."""

    window_s: float = 3600.0
    max_pending: int = 100_000

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)

    def empty_join(self, predictions: SeenIds | None = None) -> IdJoin:
        """A join with nothing pending, and the predictions seen so far (none by default)."""
        return IdJoin(seen_ids() if predictions is None else predictions, self.window_ms, self.max_pending)

    def restored_join(self, state: dict[str, Any]) -> IdJoin:
        return IdJoin.from_state(state, ids.time_key, self.window_ms, self.max_pending)


class JoinRunner:
    """One joined processor: `restore` its join, offsets and view from the
    checkpoint, `step` through batches of records, `checkpoint` now and
    then; `run` does all three until `stop`, across reconnections.

    With `publish_rejects`, unusable messages are copied to the rejected
    stream (one processor per pipeline should, or each reject shows twice).
    The view's `outgoing` events go to `outputs` (streams it declares),
    published under the processor's name: the view sets publishing ids the
    broker deduplicates by.
    With `rest_s`, a batch of a mere trickle of records is followed by a rest
    of that long, so that what comes next is read in one big batch: for a
    view that is redrawn every few seconds, not one that must be up to the
    millisecond. Under load batches are big, there is no rest, and the
    processor keeps up. Nor is there a rest while records wait in the
    reader: catching up, a batch can be small where the merge stops a run,
    and plot rested 2 s in 8 s over a backlog of 200,000 events.
    """

    def __init__(
        self, config: PipelineConfig, processor: str, open_view: OpenView, limits: JoinLimits,
        log: logging.Logger, publish_rejects: bool = False, rest_s: float = 0.0,
        checkpoint_every_s: float = 1.0, outputs: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.processor = processor
        self.open_view = open_view
        self.limits = limits
        self.log = log
        self.publish_rejects = publish_rejects
        self.rest_s = rest_s
        self.checkpoint_every_s = checkpoint_every_s
        self.outputs = outputs
        names = config.names
        self.streams = (names.y_true, names.y_pred)
        self.path = config.checkpoint_path(processor)
        self.consumer_name = names.consumer(processor)
        self.intake = Intake(log, processor)
        self.rate = RateLog(log, "joined")
        self.counts = CountsFile(config.logs_dir, processor)
        self.join = limits.empty_join()
        self.offsets: dict[str, int | None] = dict.fromkeys(self.streams)
        self.view: View | None = None

    def restore(self, fresh: bool = False) -> None:
        """The join, offsets and view the checkpoint describes; fresh ones
        (so the view is rebuilt from the streams' start) without a usable
        checkpoint, or when `fresh`."""
        if self.view is not None:
            self.view.close()
        saved = None if fresh else checkpoint.load(self.path, self.streams)
        if saved is not None:

            def resume(saved: checkpoint.Checkpoint) -> None:
                self.join = self.limits.restored_join(saved.state["join"])
                self.offsets = {s: checkpoint.offset_in(saved, s) for s in self.streams}
                self.view = self.open_view(saved.state["view"])

            if resumed(self.log, resume, saved):
                return
        self.join = self.limits.empty_join()
        self.offsets = dict.fromkeys(self.streams)
        self.view = self.open_view(None)

    def step(self, records: list[Record]) -> list[Pair]:
        """Join a batch of records, write the pairs to the view, and expire
        (and report) what waited too long; the pairs."""
        assert self.view is not None, "restore first"
        names = self.config.names
        pairs = []
        for record in records:
            pair = self._join_record(record)
            if pair is not None:
                pairs.append(pair)
            self.offsets[record.stream] = record.offset
        if pairs:
            self.view.write(pairs)
            self.rate.add(len(pairs))
        expired = self.join.expire()
        self.intake.reject_expired(expired, {Side.TRUTH: names.y_true, Side.PREDICTION: names.y_pred})
        if expired:
            self.log.warning("%d events expired unmatched (%d so far), e.g. %s %s", len(expired),
                             self.join.counts.expired, expired[0].side.value, expired[0].id)
        return pairs

    async def checkpoint(self, consumer: rstream.Consumer, rejects: ConfirmedPublisher,
                         outputs: ConfirmedPublisher | None = None) -> None:
        """Publish the view's events, make the view durable, write the
        checkpoint, then store the offsets on the broker (events and rejects
        are published before, so a crash repeats one, never loses it)."""
        assert self.view is not None, "restore first"
        events = self.view.outgoing()
        if events:
            assert outputs is not None, "a view with events needs a JoinRunner with outputs"
            await (await outputs.send_together(events))
        if self.publish_rejects:
            await self.intake.publish_rejects(rejects, self.config.names.rejected)
        else:
            self.intake.forget_rejects()  # logged and counted only
        self.view.sync()
        _save(self.path, self.offsets, self.join, self.view.state())
        for stream, offset in self.offsets.items():
            if offset is not None:
                await consumer.store_offset(stream, self.consumer_name, offset)

    def totals(self) -> dict[str, int]:
        return {"processed": self.rate.total, "rejected": self.intake.rejected,
                "expired": self.join.counts.expired}

    async def run(self, stop: asyncio.Event, after_batch: AfterBatch | None = None) -> None:
        """Run until `stop`; `after_batch(idle)` runs after every loop turn.

        When the broker goes away, everything since the last checkpoint is
        dropped (the view is reopened from it) and reading resumes from there
        once the broker is back."""
        try:
            await keep_running(lambda watch: self._attempt(stop, watch, after_batch), stop, self.log)
        finally:
            if self.view is not None:
                self.view.close()
                self.view = None

    async def _attempt(self, stop: asyncio.Event, watch: Watch, after_batch: AfterBatch | None) -> None:
        config, names, log = self.config, self.config.names, self.log
        self.intake.forget_rejects()  # anything not yet reported will be read again
        fresh = not self.path.exists()
        self.restore()
        connection = config.connection_name(self.processor)
        async with (
            open_consumer(config.broker, connection, watch) as consumer,
            open_producer(config.broker, connection, watch) as producer,
            RecordReader(lambda: open_consumer(config.broker, connection, watch)) as reader,
        ):
            await declare_streams(consumer, self.streams + (names.rejected,) + self.outputs, config.retention)
            rejects = ConfirmedPublisher(producer, None, watch)
            outputs = ConfirmedPublisher(producer, self.consumer_name, watch) if self.outputs else None
            if await ahead_of_streams(consumer, self.offsets):
                log.warning("the checkpoint is past the end of the streams (were they deleted and "
                            "created again?): rebuilding the view from the start of the streams")
                self.restore(fresh=True)
            for stream, read in zip(self.streams, (chunks.read_truths, chunks.read_predictions)):
                await reader.subscribe(stream, after(self.offsets[stream]), self.consumer_name, read)
            # Truth is published a moment before its prediction: let it
            # wait on the broker, not in the join's memory.
            reader.follow(names.y_true, names.y_pred, TRUTH_HOLD_S)
            watch.connected = True
            if fresh:
                log.info("no checkpoint at %s: building the view from the start of the streams", self.path)
            log.info("joining %s and %s from offsets %s", *self.streams,
                     {s: "first" if o is None else o + 1 for s, o in self.offsets.items()})
            checkpoints = Every(self.checkpoint_every_s, wait_first=True)
            unsaved = False
            while not stop.is_set():
                watch.check()
                records = await reader.next_batch(READ_BATCH, timeout=0.2)
                pairs = self.step(records)
                unsaved = unsaved or bool(records)
                if pairs:
                    # A low estimate of the lag (its 10th percentile in this
                    # batch): measured to keep both sides' pending small,
                    # where the median left predictions waiting.
                    lags = sorted(pair.prediction_lag_ms for pair in pairs)
                    reader.lead(names.y_true, lags[len(lags) // 10])
                self.rate.maybe_log(self._progress)
                self.counts.update(self.totals())
                if after_batch is not None:
                    await after_batch(not records)
                if self.rest_s and 0 < len(records) < TRICKLE and reader.queued() < TRICKLE:
                    await sleep_unless_stopped(stop, self.rest_s)
                if unsaved and checkpoints.due():
                    await self.checkpoint(consumer, rejects, outputs)
                    release_free_memory()  # what the batches since the last checkpoint freed
                    unsaved = False
            await self.checkpoint(consumer, rejects, outputs)
            self.counts.update(self.totals(), force=True)
            log.info("stopped: %d joined, %d pending, %d expired, %d rejected", self.join.counts.joined,
                     self.join.pending_count(), self.join.counts.expired, self.intake.rejected)

    def _progress(self) -> str:
        return (f"{self.join.pending_count()} pending, {self.join.counts.expired} expired, "
                f"{self.intake.rejected} rejected")

    def _join_record(self, record: Record) -> Pair | None:
        """Feed one y_true or y_pred record to the join; the pair it completes, if any."""
        intake, join = self.intake, self.join
        if record.stream == self.streams[0]:
            truth = intake.decode(record, codec.TruthEvent)
            if truth is None:
                return None
            side, event_id, value = Side.TRUTH, truth.id, truth.y_true
        else:
            prediction = intake.decode(record, codec.PredictionEvent)
            if prediction is None:
                return None
            side, event_id, value = Side.PREDICTION, prediction.features_id, prediction.y_pred
        # The join window runs on the broker's clock (when it stored the chunk),
        # not on the events' own creation_time, which any publisher can set wrong.
        pair = join.add(side, event_id, Half(value, record.offset, record.timestamp_ms))
        if isinstance(pair, Refused):
            intake.reject(record, pair.reason)
            return None
        if pair is not None and not math.isfinite(pair.absolute_error):
            intake.reject(record, f"the absolute error for id {event_id} overflows")
            return None
        return pair


async def ahead_of_streams(consumer: rstream.Consumer, offsets: dict[str, int | None]) -> bool:
    """Whether an offset read before is past what its stream holds now."""
    for stream, offset in offsets.items():
        if offset is not None:
            end = await last_position(consumer, stream)
            if end is None or end.offset < offset:
                return True
    return False


def _save(path: Path, offsets: dict[str, int | None], join: IdJoin, view_state: dict[str, Any]) -> None:
    checkpoint.save(path, checkpoint.Checkpoint(dict(offsets), {"join": join.to_state(), "view": view_state}))


@dataclass(frozen=True)
class HandOver:
    """Where a replay left the join: what a joined processor carrying on
    from its end needs."""

    ends: dict[str, int | None]  # per stream, the last offset read
    truths: dict[str, Half]  # y_true read with no prediction yet
    predictions: dict[str, Half]  # predictions read whose y_true comes later
    newest_ms: int  # the newest chunk time read
    seen: SeenIds  # every prediction read, through the duplicate rule


async def hand_over(
    config: PipelineConfig, processor: str, handed: HandOver, limits: JoinLimits, view_state: dict[str, Any]
) -> None:
    """Make `processor` carry on from a replay's end: its checkpoint is the
    one it would have had, had it just read what the replay read (with the
    view in `view_state`), and its offsets on the broker say so too. Call
    with the processor's view lock held."""
    join = limits.empty_join(handed.seen)
    join.newest_ms = max([handed.newest_ms, *(h.event_ms for h in handed.predictions.values())])
    join.pending[Side.TRUTH].update(handed.truths)
    join.pending[Side.PREDICTION].update(handed.predictions)
    join.expire()
    _save(config.checkpoint_path(processor), handed.ends, join, view_state)
    async with open_consumer(config.broker, config.connection_name("replay")) as consumer:
        for stream, offset in handed.ends.items():
            if offset is not None:
                await consumer.store_offset(stream, config.names.consumer(processor), offset)


def forget(config: PipelineConfig, processor: str) -> None:
    """Remove `processor`'s checkpoint: on its next start it rebuilds its view
    from the streams (while a replay swaps the view, say)."""
    config.checkpoint_path(processor).unlink(missing_ok=True)


@dataclass(frozen=True)
class JoinStatus:
    processor: str
    joined: int
    pending: int
    expired: int
    checkpoint_at: str  # when the checkpoint was written (ISO 8601, UTC)


def join_status(config: PipelineConfig, processor: str) -> JoinStatus | None:
    """The join's figures from `processor`'s last checkpoint; None without one."""
    path = config.checkpoint_path(processor)
    saved = checkpoint.load(path, (config.names.y_true, config.names.y_pred))
    if saved is None:
        return None
    try:
        join = saved.state["join"]
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        return JoinStatus(processor, int(join["counts"]["joined"]),
                          sum(len(waiting) for waiting in join["pending"].values()),
                          int(join["counts"]["expired"]), written.isoformat(timespec="milliseconds"))
    except (KeyError, TypeError, ValueError, OSError):
        return None
