"""Rebuilding drift.csv from the streams' history: features, y_pred and
y_true read from a start to their ends now, through the drift processor's
own step (`shell.drift_runner.DriftRunner`), so a replayed view is the live
one. The live view is swapped for it and drift carries on from its end, or
it goes to a file of its own (`--out`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rstream
from rstream import ConsumerOffsetSpecification, OffsetType

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.drift_log import DriftSettings, publisher_name
from nnmon.processors.shell.drift_runner import SOURCE_READERS, DriftReading, DriftRunner
from nnmon.processors.shell.joined import READ_BATCH
from nnmon.processors.shell.lock import view_lock
from nnmon.streams.client.connection import open_consumer, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import codec
from nnmon.streams.read.merge import Record
from nnmon.streams.read.reader import RecordReader, last_position, position_at

log = logging.getLogger("nnmon.replay")

QUIET_S = 5.0  # a stream that delivers nothing for this long has nothing more before its end

@dataclass(frozen=True)
class DriftReplay:
    rows: int  # events counted
    path: Path


async def read_through(config: PipelineConfig, reading: DriftReading, start: ConsumerOffsetSpecification,
                       take: Callable[[list[Record]], object], y_true_to: int | None = None) -> None:
    """Hand `take` every record of `reading`'s streams from `start` (a
    point of y_true: the other streams start from its time) to their ends
    now; with `y_true_to`, y_true to that offset first, then the others'
    events of the ids it held (`reading.only`). `reading`'s offsets then
    cover the ends."""
    names = config.names
    async with open_consumer(config.broker, config.connection_name("replay")) as consumer:
        starts = await _starts(consumer, reading.streams, names.y_true, start)
        ends: dict[str, int] = {}
        for stream in reading.streams:
            end = await last_position(consumer, stream)
            if end is not None and stream in starts:
                ends[stream] = end.offset
    if y_true_to is None or names.y_true not in ends:
        await _read(config, reading, starts, ends, take)
    else:
        ids: set[str] = set()

        def take_truths(records: list[Record]) -> None:
            for record in records:
                truth = reading.intake.decode(record, codec.TruthEvent)
                if truth is not None:
                    ids.add(truth.id)
            take(records)

        await _read(config, reading, starts, {names.y_true: min(ends[names.y_true], y_true_to)}, take_truths)
        reading.only = ids
        await _read(config, reading, starts, {s: e for s, e in ends.items() if s != names.y_true}, take)
        reading.only = None
        ends[names.y_true] = min(ends[names.y_true], y_true_to)
    reading.offsets.update(ends)  # drift carries on after them, whatever the start


async def _read(config: PipelineConfig, reading: DriftReading, starts: dict[str, ConsumerOffsetSpecification],
                ends: dict[str, int], take: Callable[[list[Record]], object]) -> None:
    """Hand `take` the records of each stream in `ends` from its start to its end."""
    async with RecordReader(lambda: open_consumer(config.broker, config.connection_name("replay"))) as reader:
        for stream in ends:
            await reader.subscribe(stream, starts[stream], None, SOURCE_READERS[reading.sources[stream]])
        remaining = set(ends)
        while remaining:
            records = await reader.next_batch(READ_BATCH, timeout=QUIET_S)
            if not records:
                break  # the start was past the last message
            take([r for r in records if r.offset <= ends[r.stream] and r.stream in remaining])
            remaining -= {r.stream for r in records if r.offset >= ends[r.stream]}


async def _starts(consumer: rstream.Consumer, streams: tuple[str, ...], y_true: str,
                  start: ConsumerOffsetSpecification) -> dict[str, ConsumerOffsetSpecification]:
    """Where each stream's replay starts: y_true at `start`, the others at
    its time (at `start` itself when it is the first or a time)."""
    if start.offset_type in (OffsetType.FIRST, OffsetType.TIMESTAMP):
        return dict.fromkeys(streams, start)
    found = await position_at(consumer, y_true, start)
    if found is None:
        return {}
    at = ConsumerOffsetSpecification(OffsetType.TIMESTAMP, found.timestamp_ms)
    return {stream: start if stream == y_true else at for stream in streams}


async def rebuild_drift(config: PipelineConfig, settings: DriftSettings, start: ConsumerOffsetSpecification,
                        out: Path | None, y_true_to: int | None = None) -> DriftReplay:
    """Write drift.csv from history (to `y_true_to` and its time, with
    `out`); with `out`, to `out` and leave the live view alone; else swap
    the live view for it and hand drift its end."""
    target = out if out is not None else config.drift_path
    partial = target.with_name(target.name + ".partial")
    runner = DriftRunner(config, settings, log, view_path=partial, replaying=True)
    if out is not None:
        return await _replayed(config, runner, start, target, y_true_to, live=False)
    assert y_true_to is None, "the live view reaches the streams' end, where drift carries on"
    with view_lock(config, "drift"):
        # No checkpoint while the view is swapped: a crash in between makes
        # drift rebuild from the streams rather than trust a stale length.
        runner.path.unlink(missing_ok=True)
        return await _replayed(config, runner, start, target, None, live=True)


async def _replayed(config: PipelineConfig, runner: DriftRunner, start: ConsumerOffsetSpecification,
                    target: Path, y_true_to: int | None, live: bool) -> DriftReplay:
    runner.restore(fresh=True)
    assert runner.view is not None
    try:
        await read_through(config, runner.reading, start, runner.step, y_true_to)
        events = runner.view.outgoing()
        runner.view.sync()
        state = runner.view.state()
    finally:
        runner.view.close()
        runner.view = None
    os.replace(runner.view_path, target)
    if live:
        async with (open_producer(config.broker, config.connection_name("replay")) as producer,
                    open_consumer(config.broker, config.connection_name("replay")) as consumer):
            # Under drift's names: the broker drops what drift published
            # already, and keeps the windows drift never closed.
            await declare_streams(producer, (config.names.drift, config.names.alerts), config.retention)
            for source, batches in events.items():
                # A producer per name: rstream's holds one publisher per stream.
                async with open_producer(config.broker, config.connection_name(f"replay-{source}")) as own:
                    await (await ConfirmedPublisher(own, publisher_name(config.names, source))
                           .send_together(batches))
            runner.save(state)
            await runner.store_offsets(consumer)
    return DriftReplay(runner.rate.total, target)
