"""`model`: predicts y for every features event and publishes y_pred.

It reads whatever features are waiting, predicts them in one vectorized call,
and publishes the predictions with the features offset + 1 as publishing id
under a fixed publisher name, so the broker drops a prediction published
twice (after a crash, say). Each features id is predicted once: a repeated
features event (a writer that retried) is refused by the duplicate rule
(`core.duplicates`) and reported.

Its checkpoint holds the duplicate rule as it was after the last features
event whose prediction (and all before it) is confirmed, with that offset;
it is written at most once a second and whenever it is idle, before the
offset is stored on the broker. A restart reads on from the checkpoint; with
none, from the start of features, to rebuild the rule, predicting only what
the broker does not have yet.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rstream
from rstream import RawMessage

from nnmon.processors.core.duplicates import SeenIds, Verdict
from nnmon.processors.core.predictor import Predictor
from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.rates import RateLog
from nnmon.processors.run.runtime import UsageError
from nnmon.processors.run.throttle import Every
from nnmon.processors.shell import checkpoint
from nnmon.processors.shell.counts import CountsFile
from nnmon.processors.shell.duplicates import seen_ids
from nnmon.processors.shell.intake import Intake
from nnmon.streams.client.connection import Watch, open_consumer, open_producer
from nnmon.streams.client.publisher import ConfirmedPublisher, abandon
from nnmon.streams.client.reconnect import keep_running
from nnmon.streams.client.topology import declare_streams
from nnmon.streams.events import chunks, codec
from nnmon.streams.events.ids import IdGenerator
from nnmon.streams.events.templates import PredictionTemplate
from nnmon.streams.read.merge import Record
from nnmon.streams.read.reader import RecordReader, after, last_position

log = logging.getLogger("nnmon.model")

# Batches of predictions awaiting the broker's confirms at once.
IN_FLIGHT = 4
# Storing an offset writes a record into the features stream: at 1,000
# events/s a store per batch was a quarter of the broker's writes. Between
# stores, a restarted model reads again what it already predicted, and
# leaves out what the broker already has (see `_predictions`).
STORE_EVERY_S = 1.0


@dataclass
class _Reading:
    """Where model is in the features stream: the last offset read, and the
    duplicate rule after it."""

    offset: int | None
    seen: SeenIds


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
    path = config.checkpoint_path("model")
    async with (
        open_consumer(config.broker, connection, watch) as consumer,
        open_producer(config.broker, connection, watch) as producer,
        RecordReader(lambda: open_consumer(config.broker, connection, watch)) as reader,
    ):
        await declare_streams(producer, (names.features, names.y_pred, names.rejected), config.retention)
        intake.forget_rejects()  # anything not yet reported will be read again
        published = await _check_not_recreated(consumer, producer, names.features, names.y_pred, name)
        reading = await _restore(consumer, path, names.features)
        start = reading.offset
        await reader.subscribe(names.features, after(start), name, chunks.read_features)
        watch.connected = True
        publisher = ConfirmedPublisher(producer, name, watch)
        # No publisher name: rejects are numbered per process, so broker-side
        # deduplication would drop those of a restarted model.
        reject_publisher = ConfirmedPublisher(producer, None, watch)
        log.info("predicting %s -> %s with %s, from offset %s", names.features,
                 names.y_pred, work.predictor.version, "first" if start is None else start + 1)
        # Several batches await their confirms at once; each one's offset
        # (with the rule as it was after it) may be stored once it and all
        # before it are confirmed.
        in_flight: deque[tuple[asyncio.Future[Any], int, dict[str, Any]]] = deque()
        progress = _StoredOffset(confirmed=start, stored=start, seen=reading.seen.to_state())
        stores = Every(STORE_EVERY_S)

        async def settle_oldest() -> None:
            confirmed, offset, seen = in_flight.popleft()
            await confirmed
            progress.confirmed, progress.seen = offset, seen

        async def store_offset() -> None:
            if progress.confirmed is not None and progress.confirmed != progress.stored:
                checkpoint.save(path, checkpoint.Checkpoint({names.features: progress.confirmed},
                                                            {"seen": progress.seen}))
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
                messages = _predictions(records, work, ids, reading.seen, published)
                confirms = [await publisher.send(names.y_pred, messages),
                            await intake.send_rejects(reject_publisher, names.rejected)]
                in_flight.append((asyncio.gather(*confirms), records[-1].offset, reading.seen.to_state()))
                work.predicted.add(len(messages))
                work.predicted.maybe_log(lambda: f"{intake.rejected} rejected")
                work.counts.update(work.totals())
            while in_flight:
                await settle_oldest()
            await store_offset()
        finally:
            await abandon(confirmed for confirmed, _, _ in in_flight)


@dataclass
class _StoredOffset:
    """The newest features offset whose predictions (and all before them)
    are confirmed, with the duplicate rule after it, and the offset stored."""

    confirmed: int | None
    stored: int | None
    seen: dict[str, Any]


async def _restore(consumer: rstream.Consumer, path: Path, features: str) -> _Reading:
    """Where the checkpoint says model is; the start of features without one."""
    saved = checkpoint.load(path, (features,))
    if saved is not None:
        try:
            offset = checkpoint.offset_in(saved, features)
            end = await last_position(consumer, features)
            if offset is None or (end is not None and end.offset >= offset):
                return _Reading(offset, seen_ids(saved.state["seen"]))
            log.warning("the checkpoint is past the end of %s (was it deleted and created again?): "
                        "reading it from the start", features)
        except (KeyError, TypeError, ValueError) as error:
            log.warning("damaged checkpoint (%r): reading %s from the start", error, features)
    else:
        log.info("no checkpoint at %s: reading %s from the start, to know which ids were predicted",
                 path, features)
    return _Reading(None, seen_ids())


def _predictions(records: list[Record], work: _Predicting, ids: IdGenerator, seen: SeenIds,
                 published: int) -> list[RawMessage]:
    """The prediction messages for the usable features among `records`,
    leaving out those the broker already has (publishing ids up to `published`)."""
    predictor, intake = work.predictor, work.intake
    good = []
    for record in records:
        event = intake.decode(record, codec.FeaturesEvent)
        if event is None:
            continue
        verdict = seen.verdict(event.id, record.timestamp_ms)
        if verdict is not Verdict.NEW:
            intake.reject(record, seen.refusal(verdict, "features event", "features events", event.id))
        elif event.features.keys() >= predictor.feature_set:
            seen.admit(event.id, record.timestamp_ms)
            if record.offset + 1 > published:
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
) -> int:
    """The last publishing id of model's predictions (0 for none). Refuses
    to predict when y_pred already holds predictions for features offsets
    that the features stream does not have: features was deleted and created
    again, and the broker would silently drop every new prediction as a
    duplicate of an old one."""
    published: int = await (await producer.default_client).query_publisher_sequence(y_pred, name)
    if published == 0:
        return 0
    end = await last_position(consumer, features)
    if end is None or end.offset + 1 < published:
        raise UsageError(
            f"{y_pred} holds predictions up to {features} offset {published - 1}, past the end of "
            f"{features}: it was recreated. Delete {y_pred} too, or use another --stream-prefix"
        )
    return published
