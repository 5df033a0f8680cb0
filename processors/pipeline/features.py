"""`features`: publishes the data set's rows as features and y_true events.

Each row gets a fresh UUIDv7 id (or, from a data file, the id of its id
column); its features go to the `features` stream and its target to
`y_true`, under the same id. The diabetes rows are cycled in a seeded
shuffled order; a data file's rows go in the file's order, once or cycling.
One every `interval` seconds, or as fast as the broker confirms them with an
interval of 0.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rstream import RawMessage

from nnmon.processors.core.dataset import (
    COVARIATE_DRIFTED,
    DRIFT_SCALE,
    DRIFT_SHIFT,
    NO_DRIFT,
    Dataset,
    DemoDrift,
    cycled_rows,
    diabetes,
    drifted_features,
    drifted_target,
)
from nnmon.processors.core.pace import FULL_SPEED_BATCH, Pace
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.rates import RateLog
from nnmon.processors.shell.counts import CountsFile
from nnmon.processors.shell.data_file import DataFile
from nnmon.streams.client.connection import Watch, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher, abandon
from nnmon.streams.client.reconnect import keep_running, sleep_unless_stopped
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import codec
from nnmon.streams.events.ids import IdGenerator
from nnmon.streams.events.templates import EventTemplate

log = logging.getLogger("nnmon.features")

# Batches awaiting the broker's confirms at once.
IN_FLIGHT = 4
# Templates pay off for rows sent again and again (the data set's 442); a
# large data file sent once would only fill memory with them.
MAX_TEMPLATES = 10_000


class RowMessages:
    """The features and y_true messages of the data set's rows, for any id
    and time: each row's are encoded once (`EventTemplate`)."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset
        self._templates: dict[tuple[int, bool, bool], tuple[EventTemplate, EventTemplate]] = {}

    def make(self, rows: list[int], ids: Callable[[int], str], first: int = 0, drift: DemoDrift = NO_DRIFT,
             ) -> tuple[list[RawMessage], list[RawMessage], str]:
        """Messages for `rows`, each pair under the id `ids` gives its row; and the last id.
        The rows are events number `first` on, and drift as `drift` says
        (`dataset.drifted_target`, `dataset.drifted_features`)."""
        now_ms = time.time_ns() // 1_000_000
        features, truths = [], []
        event_id = ""
        for index, row in enumerate(rows, first):
            key = (row, *drift.at(index))
            templates = self._templates.get(key) or self._make_templates(*key)
            event_id = ids(row)
            features.append(templates[0].encode(event_id, now_ms))
            truths.append(templates[1].encode(event_id, now_ms))
        return features, truths, event_id

    def _make_templates(self, row: int, concept: bool, covariate: bool,
                        ) -> tuple[EventTemplate, EventTemplate]:
        data = self._dataset
        target = float(data.target[row])
        values = drifted_features(data, row) if covariate else data.row_features(row)
        if len(self._templates) >= MAX_TEMPLATES:
            self._templates.clear()
        templates = self._templates[row, concept, covariate] = (
            EventTemplate(codec.FeaturesEvent("", row, values, 0)),
            EventTemplate(codec.TruthEvent("", drifted_target(target) if concept else target, 0)),
        )
        return templates


@dataclass
class _Publishing:
    """What survives a reconnection: where in the data set we are, the
    batches not yet confirmed (sent again with the same publishing ids, so
    the broker stores each once), and the running totals."""

    rows: Iterator[int]
    ids: Callable[[int], str]  # a row's event id
    publisher_name: str
    rate: RateLog
    counts: CountsFile
    sent: int = 0  # events the broker confirmed
    made: int = 0  # events made: confirmed, or in `unconfirmed`
    next_publishing_id: int = 1
    unconfirmed: deque[tuple[list[RawMessage], list[RawMessage]]] = field(default_factory=deque)


async def run_features(
    config: PipelineConfig, stop: asyncio.Event, interval: float, count: int | None, seed: int,
    drift: DemoDrift = NO_DRIFT, data: DataFile | None = None, cycle: bool = False,
) -> int:
    """Publish until `count` events are out or `stop` is set; returns how
    many. The truths and features drift as `drift` says. With `data`, its
    rows, in order (once, or again and again with `cycle`), not the diabetes set's."""
    generator = IdGenerator()
    # Unique per process: several features may publish at once, and the
    # broker deduplicates per publisher name.
    name = f"{config.names.consumer('features')}-{generator.next_id()}"
    dataset = diabetes() if data is None else data.dataset
    rows: Iterator[int]
    if data is None:
        rows = cycled_rows(len(dataset.target), seed)
    else:
        rows = itertools.cycle(range(len(dataset.target))) if cycle else iter(range(len(dataset.target)))
        if not cycle:
            count = len(dataset.target) if count is None else min(count, len(dataset.target))
    file_ids = None if data is None else data.ids
    ids: Callable[[int], str] = (lambda _: generator.next_id()) if file_ids is None else file_ids.__getitem__
    counts = CountsFile(config.logs_dir, "features")
    progress = _Publishing(rows, ids, name, RateLog(log, "published"), counts)
    await keep_running(lambda watch: _publish(config, stop, interval, count, progress, watch, drift, dataset),
                       stop, log)
    progress.counts.update({"processed": progress.sent}, force=True)
    log.info("stopped after publishing %d events", progress.sent)
    return progress.sent


async def _publish(
    config: PipelineConfig, stop: asyncio.Event, interval: float, count: int | None,
    progress: _Publishing, watch: Watch, drift: DemoDrift, dataset: Dataset,
) -> None:
    messages = RowMessages(dataset)
    names = config.names
    pace = Pace(interval)
    async with open_producer(config.broker, config.connection_name("features"), watch) as producer:
        await declare_streams(producer, (names.features, names.y_true), config.retention)
        watch.connected = True
        publisher = ConfirmedPublisher(producer, progress.publisher_name, watch)
        log.info("publishing to %s and %s every %gs", names.features, names.y_true, interval)

        async def send(batch: tuple[list[RawMessage], list[RawMessage]]) -> asyncio.Future[Any]:
            """Write a batch now (in order); the future of its confirms."""
            return await publisher.send_together({names.features: batch[0], names.y_true: batch[1]})

        # Several batches await their confirms at once; they count as sent in
        # order. After a reconnection, the unconfirmed ones go again first.
        in_flight: deque[asyncio.Future[Any]] = deque()
        for batch in progress.unconfirmed:
            in_flight.append(await send(batch))

        async def settle_oldest() -> None:
            await in_flight[0]
            in_flight.popleft()
            confirmed = len(progress.unconfirmed.popleft()[0])
            progress.sent += confirmed
            progress.rate.add(confirmed)
            progress.counts.update({"processed": progress.sent})

        try:
            while not stop.is_set() and (count is None or progress.made < count):
                watch.check()
                if len(in_flight) >= IN_FLIGHT:
                    await settle_oldest()
                    continue
                due = pace.to_send(time.monotonic(), progress.made)
                if due == 0:
                    if in_flight:
                        await settle_oldest()
                    else:
                        await sleep_unless_stopped(stop, pace.wait(time.monotonic(), progress.made))
                    continue
                size = min(due, FULL_SPEED_BATCH)
                if count is not None:
                    size = min(size, count - progress.made)
                features, truths, last_id = messages.make([next(progress.rows) for _ in range(size)],
                                                          progress.ids, progress.made, drift)
                if drift.concept_after is not None and 0 <= drift.concept_after - progress.made < size:
                    log.warning("concept drift from event %d on: every y_true is now %g * y_true + %g",
                                drift.concept_after + 1, DRIFT_SCALE, DRIFT_SHIFT)
                if drift.covariate_after is not None and 0 <= drift.covariate_after - progress.made < size:
                    log.warning("covariate drift from event %d on: %s each grow by one standard deviation",
                                drift.covariate_after + 1, " and ".join(COVARIATE_DRIFTED))
                batch = (numbered(features, progress.next_publishing_id),
                         numbered(truths, progress.next_publishing_id))
                progress.next_publishing_id += size
                progress.made += size
                progress.unconfirmed.append(batch)
                in_flight.append(await send(batch))
                if interval >= 1:  # a demo's pace: a line per event
                    log.info("published %s", last_id)
                else:
                    progress.rate.maybe_log()
            while in_flight:
                await settle_oldest()
        finally:
            await abandon(in_flight)


def numbered(messages: list[RawMessage], first_id: int) -> list[RawMessage]:
    for publishing_id, message in enumerate(messages, first_id):
        message.publishing_id = publishing_id
    return messages
