"""The shell of `drift`: read features, y_pred and y_true, take each event
through the duplicate rule of its stream, and hand each source's values to
the drift view (`drift_log.DriftLog`).

No join: each stream is a source of its own, read in its order, so a
restart from the checkpoint closes every window again exactly as before.
Checkpoint order, so a kill at any moment loses nothing and doubles nothing:
1. the view's events are published (and confirmed), each source's under its
   own name, and drift's own rejects;
2. the view makes what it wrote durable;
3. the checkpoint file stores the view's state, the duplicate rules and the
   last offsets read, atomically;
4. the offsets are stored on the broker, for people and tools.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np
import rstream

from nnmon.processors.core.duplicates import SeenIds, Verdict
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.rates import RateLog
from nnmon.processors.run.runtime import release_free_memory
from nnmon.processors.run.throttle import Every
from nnmon.processors.shell import checkpoint
from nnmon.processors.shell.counts import CountsFile
from nnmon.processors.shell.drift_log import DriftLog, DriftSettings, publisher_name, summary_path
from nnmon.processors.shell.duplicates import seen_ids
from nnmon.processors.shell.intake import Intake
from nnmon.processors.shell.joined import READ_BATCH, ahead_of_streams, resumed
from nnmon.streams.client.connection import Watch, open_consumer, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.client.reconnect import keep_running
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import chunks, codec
from nnmon.streams.events.ids import prediction_times
from nnmon.streams.read.merge import Record
from nnmon.streams.read.reader import RecordReader, after
from nnmon.streams.settings import StreamNames

# Drift is no one's latency: a checkpoint (its duplicate rules are a few MB)
# every few seconds is enough.
CHECKPOINT_EVERY_S = 2.0

SOURCE_READERS = {"features": chunks.read_features, "y_pred": chunks.read_predictions,
                  "y_true": chunks.read_truths}


class DriftReading:
    """Which events count for drift, and their values: each stream's events
    through its own duplicate rule, a features event only with exactly the
    reference's features; the offsets read."""

    def __init__(self, names: StreamNames, features: tuple[str, ...], sources: tuple[str, ...],
                 log: logging.Logger) -> None:
        by_source = {"features": names.features, "y_pred": names.y_pred, "y_true": names.y_true}
        self.sources = {by_source[source]: source for source in sources}  # stream -> source
        self.streams = tuple(self.sources)
        # What model and metric already copy to the rejected stream (malformed
        # events, repeats) is logged and counted only; a features event that
        # does not fit the reference is drift's own reject, copied there.
        self.intake = Intake(log, "drift", keep_rejects=False)
        self.misfits = Intake(log, "drift")
        self.feature_set = frozenset(features)
        getter = operator.itemgetter(*features)
        self.feature_values: Callable[[dict[str, float]], Any] = (
            getter if len(features) > 1 else lambda values: (getter(values),))
        self.seen: dict[str, SeenIds] = {}
        self.offsets: dict[str, int | None] = {}
        self.only: set[str] | None = None  # these ids only (a range of history ending at a y_true offset)
        self.restore(None)

    def restore(self, saved: checkpoint.Checkpoint | None) -> None:
        """As `saved` left it (KeyError, TypeError or ValueError if damaged); afresh without."""
        if saved is None:
            self.seen = {stream: seen_ids() for stream in self.streams}
            self.offsets = dict.fromkeys(self.streams)
        else:
            self.seen = {stream: seen_ids(saved.state["seen"][stream]) for stream in self.streams}
            self.offsets = {stream: checkpoint.offset_in(saved, stream) for stream in self.streams}

    def state(self) -> dict[str, Any]:
        return {stream: seen.to_state() for stream, seen in self.seen.items()}

    def take(self, records: list[Record]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per source, the prediction times and the matrix of values (a
        column per column of the source) of the records that count."""
        by_stream: dict[str, tuple[list[str], list[int], list[Any]]] = {}
        for record in records:
            self.offsets[record.stream] = record.offset
            taken = self._take(record)
            if taken is not None:
                ids, times, values = by_stream.setdefault(record.stream, ([], [], []))
                ids.append(taken[0])
                times.append(record.timestamp_ms)
                values.append(taken[1])
        taken_by_source = {}
        for stream, (ids, times, values) in by_stream.items():
            matrix = np.array(values, dtype=np.float64)
            if matrix.ndim == 1:
                matrix = matrix[:, None]
            taken_by_source[self.sources[stream]] = (np.array(prediction_times(ids, times), dtype=np.int64),
                                                     matrix)
        return taken_by_source

    def _take(self, record: Record) -> tuple[str, Any] | None:
        """The id (whose time is the prediction's) and values of a record
        that counts; None, after reporting it, for one that does not."""
        source, intake = self.sources[record.stream], self.intake
        event_id: str
        value: Any
        if source == "features":
            features = intake.decode(record, codec.FeaturesEvent)
            if features is None:
                return None
            event_id = features.id
            if self.only is not None and event_id not in self.only:
                return None
            if features.features.keys() != self.feature_set:
                if self.seen[record.stream].verdict(event_id, record.timestamp_ms) is Verdict.NEW:
                    self.misfits.reject(record, self._misfit(features.features.keys()))
                return None
            value = self.feature_values(features.features)
        elif source == "y_pred":
            prediction = intake.decode(record, codec.PredictionEvent)
            if prediction is None:
                return None
            event_id, value = prediction.features_id, prediction.y_pred
        else:
            truth = intake.decode(record, codec.TruthEvent)
            if truth is None:
                return None
            event_id, value = truth.id, truth.y_true
        if self.only is not None and event_id not in self.only:
            return None
        seen = self.seen[record.stream]
        verdict = seen.verdict(event_id, record.timestamp_ms)
        if verdict is not Verdict.NEW:
            intake.reject(record, seen.refusal(verdict, f"{source} event", f"{source} events", event_id))
            return None
        seen.admit(event_id, record.timestamp_ms)
        return event_id, value

    def _misfit(self, columns: Any) -> str:
        missing = sorted(self.feature_set - set(columns))
        extra = sorted(set(columns) - self.feature_set)
        parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
            [f"has {', '.join(extra)} besides"] if extra else [])
        return f"the features differ from the drift reference's: {'; '.join(parts)}"


class DriftRunner:
    """`restore` from the checkpoint, `step` through batches of records,
    `checkpoint` now and then; `run` does all three until `stop`."""

    def __init__(self, config: PipelineConfig, settings: DriftSettings, log: logging.Logger,
                 view_path: Path | None = None, replaying: bool = False) -> None:
        """With `view_path`, the view is written there (a replay's file), not
        to the live drift.csv; `replaying`: no summary, no log line per alert."""
        self.config = config
        self.settings = settings
        self.log = log
        self.view_path = config.drift_path if view_path is None else view_path
        self.replaying = replaying
        self.reading = DriftReading(config.names, settings.reference.features, settings.sources(), log)
        self.path = config.checkpoint_path("drift")
        self.consumer_name = config.names.consumer("drift")
        self.rate = RateLog(log, "read")
        self.counts = CountsFile(config.logs_dir, "drift")
        self.view: DriftLog | None = None

    def open_view(self, state: dict[str, Any] | None) -> DriftLog:
        return DriftLog(self.view_path, self.settings, self.config.names, state,
                        None if self.replaying else summary_path(self.config.logs_dir), quiet=self.replaying)

    def restore(self, fresh: bool = False) -> None:
        """The view, duplicate rules and offsets the checkpoint describes;
        fresh ones (the view rebuilt from the streams' start) without a
        usable checkpoint, or when `fresh`."""
        if self.view is not None:
            self.view.close()
        saved = None if fresh else checkpoint.load(self.path, self.reading.streams)
        if saved is not None:

            def resume(saved: checkpoint.Checkpoint) -> None:
                self.reading.restore(saved)
                self.view = self.open_view(saved.state["view"])

            if resumed(self.log, resume, saved):
                return
        self.reading.restore(None)
        self.view = self.open_view(None)

    def step(self, records: list[Record]) -> int:
        """Count a batch of records for their sources' windows; how many counted."""
        assert self.view is not None, "restore first"
        counted = 0
        for source, (times, values) in self.reading.take(records).items():
            self.view.add(source, times, values)
            counted += times.size
        self.rate.add(counted)
        return counted

    async def checkpoint(self, consumer: rstream.Consumer, publishers: dict[str, ConfirmedPublisher],
                         rejects: ConfirmedPublisher) -> None:
        assert self.view is not None, "restore first"
        confirms: list[Awaitable[None]] = [await publishers[source].send_together(events)
                                           for source, events in self.view.outgoing().items()]
        confirms.append(await self.reading.misfits.send_rejects(rejects, self.config.names.rejected))
        await asyncio.gather(*confirms)
        self.reading.intake.forget_rejects()
        self.view.sync()
        self.save()
        await self.store_offsets(consumer)

    def save(self, state: dict[str, Any] | None = None) -> None:
        """Write the checkpoint: the offsets, duplicate rules and the view's
        state (or `state`, a replayed view's)."""
        if state is None:
            assert self.view is not None, "restore first"
            state = self.view.state()
        checkpoint.save(self.path, checkpoint.Checkpoint(
            dict(self.reading.offsets), {"seen": self.reading.state(), "view": state}))

    async def store_offsets(self, consumer: rstream.Consumer) -> None:
        for stream, offset in self.reading.offsets.items():
            if offset is not None:
                await consumer.store_offset(stream, self.consumer_name, offset)

    def totals(self) -> dict[str, int]:
        reading = self.reading
        return {"processed": self.rate.total, "rejected": reading.intake.rejected + reading.misfits.rejected}

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await keep_running(lambda watch: self._attempt(stop, watch), stop, self.log)
        finally:
            if self.view is not None:
                self.view.close()
                self.view = None
            self.counts.update(self.totals(), force=True)

    async def _attempt(self, stop: asyncio.Event, watch: Watch) -> None:
        config, names, log = self.config, self.config.names, self.log
        self.reading.misfits.forget_rejects()  # anything not yet reported will be read again
        fresh = not self.path.exists()
        self.restore()
        connection = config.connection_name("drift")
        async with (
            open_consumer(config.broker, connection, watch) as consumer,
            open_producer(config.broker, connection, watch) as producer,
            RecordReader(lambda: open_consumer(config.broker, connection, watch)) as reader,
            AsyncExitStack() as stack,
        ):
            outputs = (names.rejected, names.drift, names.alerts)
            await declare_streams(consumer, self.reading.streams + outputs, config.retention)
            rejects = ConfirmedPublisher(producer, None, watch)
            publishers = {}
            for source in self.reading.sources.values():
                # A producer of its own: rstream's holds one publisher (one name) per stream.
                own = await stack.enter_async_context(open_producer(config.broker, f"{connection}-{source}",
                                                                    watch))
                publishers[source] = ConfirmedPublisher(own, publisher_name(names, source), watch)
            if await ahead_of_streams(consumer, self.reading.offsets):
                log.warning("the checkpoint is past the end of the streams (were they deleted and "
                            "created again?): rebuilding the view from the start of the streams")
                self.restore(fresh=True)
            for stream, source in self.reading.sources.items():
                await reader.subscribe(stream, after(self.reading.offsets[stream]), self.consumer_name,
                                       SOURCE_READERS[source])
            watch.connected = True
            if fresh:
                log.info("no checkpoint at %s: building the view from the start of the streams", self.path)
            log.info("drift of %s from offsets %s against %s", ", ".join(self.reading.streams),
                     {s: "first" if o is None else o + 1 for s, o in self.reading.offsets.items()},
                     self.settings.reference.source)
            checkpoints = Every(CHECKPOINT_EVERY_S, wait_first=True)
            unsaved = False
            while not stop.is_set():
                watch.check()
                records = await reader.next_batch(READ_BATCH, timeout=0.2)
                self.step(records)
                unsaved = unsaved or bool(records)
                self.rate.maybe_log(lambda: f"{self.totals()['rejected']} rejected")
                self.counts.update(self.totals())
                if unsaved and checkpoints.due():
                    await self.checkpoint(consumer, publishers, rejects)
                    release_free_memory()
                    unsaved = False
            await self.checkpoint(consumer, publishers, rejects)
            log.info("stopped: %d read, %d rejected", self.rate.total, self.totals()["rejected"])
