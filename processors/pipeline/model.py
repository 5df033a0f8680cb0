"""`model`: predicts y for every features event and publishes y_pred.

It reads whatever features are waiting, predicts them in one vectorized call,
and publishes the predictions with the features offset + 1 as publishing id
under a fixed publisher name, so the broker drops a prediction published
twice (after a crash, say). The consumer offset is stored only once the
predictions are confirmed, at most once a second and whenever it is idle.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import rstream
from rstream import RawMessage

from nnmon.processors.core.predictor import Predictor
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.rates import RateLog
from nnmon.processors.run.runtime import UsageError, keep_running
from nnmon.processors.run.throttle import Every
from nnmon.processors.shell.counts import CountsFile
from nnmon.processors.shell.intake import Intake
from nnmon.streams.client.connection import Watch, open_consumer, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher, abandon
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import chunks, codec
from nnmon.streams.events.ids import IdGenerator
from nnmon.streams.events.templates import PredictionTemplate
from nnmon.streams.read.merge import Record
from nnmon.streams.read.reader import RecordReader, after, last_position, stored_offset

log = logging.getLogger("nnmon.model")

# Batches of predictions awaiting the broker's confirms at once.
IN_FLIGHT = 4
# Storing an offset writes a record into the features stream: at 1,000
# events/s a store per batch was a quarter of the broker's writes. Between
# stores, a restarted model predicts again what it already published, and
# the broker drops those as duplicates (see `_predictions`).
STORE_EVERY_S = 1.0


@dataclass
class _Predicting:
    """What survives a reconnection: the model and how its predictions are
    encoded, what was rejected, and the running totals."""

    predictor: Predictor
    template: PredictionTemplate
    intake: Intake
    predicted: RateLog
    counts: CountsFile

    def totals(self) -> dict[str, int]:
        return {"processed": self.predicted.total, "rejected": self.intake.rejected}


async def run_model(config: PipelineConfig, stop: asyncio.Event, predictor: Predictor) -> None:
    work = _Predicting(predictor, PredictionTemplate(predictor.version), Intake(log, "model"),
                       RateLog(log, "predicted"), CountsFile(config.logs_dir, "model"))
    await keep_running(lambda watch: _predict(config, stop, work, watch), stop, log)
    work.counts.update(work.totals(), force=True)
    log.info("stopped after %d predictions (%d rejected)", work.predicted.total, work.intake.rejected)


async def _predict(config: PipelineConfig, stop: asyncio.Event, work: _Predicting, watch: Watch) -> None:
    names, intake = config.names, work.intake
    name = names.consumer("model")
    ids = IdGenerator()
    connection = config.connection_name("model")
    async with (
        open_consumer(config.broker, connection, watch) as consumer,
        open_producer(config.broker, connection, watch) as producer,
        RecordReader(lambda: open_consumer(config.broker, connection, watch)) as reader,
    ):
        await declare_streams(producer, (names.features, names.y_pred, names.rejected), config.retention)
        intake.forget_rejects()  # anything not yet reported will be read again
        start = await stored_offset(consumer, names.features, name)
        await _check_not_recreated(consumer, producer, names.features, names.y_pred, name)
        await reader.subscribe(names.features, after(start), name, chunks.read_features)
        watch.connected = True
        publisher = ConfirmedPublisher(producer, name, watch)
        # No publisher name: rejects are numbered per process, so broker-side
        # deduplication would drop those of a restarted model.
        reject_publisher = ConfirmedPublisher(producer, None, watch)
        log.info("predicting %s -> %s with %s, from offset %s", names.features,
                 names.y_pred, work.predictor.version, "first" if start is None else start + 1)
        # Several batches await their confirms at once; each one's offset may
        # be stored once it and all before it are confirmed.
        in_flight: deque[tuple[asyncio.Future[Any], int]] = deque()
        progress = _StoredOffset(confirmed=start, stored=start)
        stores = Every(STORE_EVERY_S)

        async def settle_oldest() -> None:
            confirmed, offset = in_flight.popleft()
            await confirmed
            progress.confirmed = offset

        async def store_offset() -> None:
            if progress.confirmed is not None and progress.confirmed != progress.stored:
                await consumer.store_offset(names.features, name, progress.confirmed)
                progress.stored = progress.confirmed
                stores.done()

        try:
            while not stop.is_set():
                watch.check()
                while in_flight and in_flight[0][0].done():
                    await settle_oldest()
                if stores.passed():
                    await store_offset()
                if len(in_flight) >= IN_FLIGHT:
                    await settle_oldest()
                    continue
                records = await reader.next_batch(timeout=0.005 if in_flight else 0.2)
                if not records:
                    if in_flight:
                        await settle_oldest()
                    else:
                        await store_offset()  # idle: nothing left to confirm
                    continue
                messages = _predictions(records, work, ids)
                confirms = [await publisher.send(names.y_pred, messages),
                            await intake.send_rejects(reject_publisher, names.rejected)]
                in_flight.append((asyncio.gather(*confirms), records[-1].offset))
                work.predicted.add(len(messages))
                work.predicted.maybe_log(lambda: f"{intake.rejected} rejected")
                work.counts.update(work.totals())
            while in_flight:
                await settle_oldest()
            await store_offset()
        finally:
            await abandon(confirmed for confirmed, _ in in_flight)


@dataclass
class _StoredOffset:
    """The newest features offset whose predictions (and all before them)
    are confirmed, and the one stored on the broker."""

    confirmed: int | None
    stored: int | None


def _predictions(records: list[Record], work: _Predicting, ids: IdGenerator) -> list[RawMessage]:
    """The prediction messages for the usable features among `records`."""
    predictor, intake = work.predictor, work.intake
    good = []
    for record in records:
        event = intake.decode(record, codec.FeaturesEvent)
        if event is None:
            continue
        if event.features.keys() >= predictor.feature_set:
            good.append((record, event))
        else:
            missing = ", ".join(sorted(predictor.feature_set - event.features.keys()))
            intake.reject(record, f"features lack {missing}")
    if not good:
        return []
    y_pred = predictor.predict([event.features for _, event in good])
    now_ms = time.time_ns() // 1_000_000
    messages = []
    for (record, event), value in zip(good, y_pred.tolist()):
        if not math.isfinite(value):  # finite features can still overflow the model
            intake.reject(record, f"the prediction is {value}: the features are out of the model's range")
            continue
        message = work.template.encode(ids.next_id(), event.id, value, now_ms)
        # Broker-side deduplication: a re-read features event yields the
        # same publishing id, which the broker drops.
        message.publishing_id = record.offset + 1
        messages.append(message)
    return messages


async def _check_not_recreated(
    consumer: rstream.Consumer, producer: rstream.Producer, features: str, y_pred: str, name: str
) -> None:
    """Refuse to predict when y_pred already holds predictions for features
    offsets that the features stream does not have: features was deleted and
    created again, and the broker would silently drop every new prediction as
    a duplicate of an old one."""
    published = await (await producer.default_client).query_publisher_sequence(y_pred, name)
    if published == 0:
        return
    end = await last_position(consumer, features)
    if end is None or end.offset + 1 < published:
        raise UsageError(
            f"{y_pred} holds predictions up to {features} offset {published - 1}, past the end of "
            f"{features}: it was recreated. Delete {y_pred} too, or use another --stream-prefix"
        )
