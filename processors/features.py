"""`features`: publishes the data set's rows as features and y_true events.

Each row gets a fresh UUIDv7 id; its features go to the `features` stream
and its target to `y_true`, under the same id. Rows are cycled in a seeded
shuffled order, one every `interval` seconds, or as fast as the broker
confirms them with an interval of 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

from processors.config import PipelineConfig
from processors.dataset import Dataset, diabetes, row_order
from processors.runtime import sleep_unless_stopped
from streams import codec
from streams.connection import open_producer
from streams.ids import IdGenerator
from streams.publisher import ConfirmedPublisher
from streams.topology import declare_streams

log = logging.getLogger("nnmon.features")

# At full speed, events go out in batches this large: one frame per stream,
# small enough to stay well under the broker's 1 MB frame limit.
FULL_SPEED_BATCH = 200


def cycled_rows(rows: int, seed: int) -> Iterator[int]:
    order = row_order(rows, seed)
    while True:
        yield from (int(row) for row in order)


def make_events(
    dataset: Dataset, rows: list[int], ids: IdGenerator
) -> tuple[list[codec.FeaturesEvent], list[codec.TruthEvent]]:
    now_ms = time.time_ns() // 1_000_000
    features, truths = [], []
    for row in rows:
        event_id = ids.next_id()
        features.append(codec.FeaturesEvent(event_id, row, dataset.row_features(row), now_ms))
        truths.append(codec.TruthEvent(event_id, float(dataset.target[row]), now_ms))
    return features, truths


async def run_features(
    config: PipelineConfig, stop: asyncio.Event, interval: float, count: int | None, seed: int
) -> int:
    """Publish until `count` events are out or `stop` is set; returns how many."""
    dataset = diabetes()
    rows = cycled_rows(len(dataset.target), seed)
    ids = IdGenerator()
    names = config.names
    batch_size = 1 if interval > 0 else FULL_SPEED_BATCH
    sent = 0
    async with open_producer(config.broker, config.connection_name("features")) as producer:
        await declare_streams(producer, (names.features, names.y_true), config.retention)
        publisher = ConfirmedPublisher(producer)
        log.info("publishing to %s and %s every %gs", names.features, names.y_true, interval)
        last_report = time.monotonic()
        while not stop.is_set() and (count is None or sent < count):
            size = batch_size if count is None else min(batch_size, count - sent)
            features, truths = make_events(dataset, [next(rows) for _ in range(size)], ids)
            await asyncio.gather(
                publisher.publish(names.features, [codec.encode(e) for e in features]),
                publisher.publish(names.y_true, [codec.encode(e) for e in truths]),
            )
            sent += size
            if interval > 0:
                log.info("published %s (row %d)", features[0].id, features[0].row)
                await sleep_unless_stopped(stop, interval)
            elif time.monotonic() - last_report >= 5:
                log.info("published %d events", sent)
                last_report = time.monotonic()
    log.info("stopped after publishing %d events", sent)
    return sent
