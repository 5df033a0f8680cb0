"""What a running pipeline looks like from outside: its streams, how far each
consumer got, the join's state, the metric log, the quality and drift windows
and their alerts.

Read-only: nothing is declared, stored or written. `collect` gathers a
`Status` from the broker (stream protocol, and the management API when it
answers), the checkpoints and the CSV; `nnmon status` prints it and the
dashboard serves it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rstream
from rstream import ConsumerOffsetSpecification, OffsetType

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.shell.joined import JoinStatus, join_status
from nnmon.processors.watch.csv_tail import RowCounter
from nnmon.processors.watch.summaries import DriftStatus, QualityStatus, read_drift, read_quality
from nnmon.streams.client.connection import open_consumer
from nnmon.streams.client.management import ManagementUnavailable, QueueInfo, stream_queues
from nnmon.streams.events.ids import id_time_ms
from nnmon.streams.read.reader import close_quietly, last_position, position_at, stored_offset

# Who reads what, by consumer name; features only writes.
CONSUMERS = (("model", "features"), ("metric", "y_true"), ("metric", "y_pred"),
             ("plot", "y_true"), ("plot", "y_pred"),
             ("drift", "features"), ("drift", "y_pred"), ("drift", "y_true"))
JOINED = ("metric", "plot")
# How long a probe waits for a chunk: the broker answers a stream that has
# data within milliseconds, so this is mostly the time an empty stream costs.
PROBE_WAIT_S = 1.0


@dataclass(frozen=True)
class StreamStatus:
    name: str
    exists: bool
    first: int | None = None  # oldest offset retention left; None when empty
    last: int | None = None
    messages: int | None = None  # from the management API
    bytes_on_disk: int | None = None  # when the broker's data directory is readable here
    segments: int | None = None  # RabbitMQ 4's management API
    retention: dict[str, Any] | None = None

    @property
    def held(self) -> int:
        """Offsets from first to last: the count of messages held, for a stream
        nobody stores offsets in (offset tracking entries take offsets too)."""
        return 0 if self.first is None or self.last is None else self.last - self.first + 1


@dataclass(frozen=True)
class ConsumerStatus:
    processor: str
    stream: str
    stored: int | None  # last offset stored as processed; None: none stored yet
    last: int | None  # the stream's last offset
    lag: int | None  # messages after `stored`
    behind_s: float | None  # age of the oldest unprocessed message; 0 when caught up
    # It stored an offset, or left a checkpoint here (one that fails before
    # its first store still ran).
    ran: bool = True

    @property
    def never_ran(self) -> bool:
        """The processor never ran under this prefix (with these logs)."""
        return not self.ran and self.last is not None

    def stale(self, threshold_s: float) -> bool:
        """Work has waited longer than `threshold_s` for a consumer that ran:
        it is not moving. (One that never ran is not stale, it is absent.)"""
        return self.ran and self.behind_s is not None and self.behind_s > threshold_s


@dataclass(frozen=True)
class CsvStatus:
    path: str
    rows: int
    last_row_at: str | None  # event time of the newest row (from its UUIDv7 id)
    modified_at: str | None


@dataclass(frozen=True)
class Status:
    streams: list[StreamStatus]
    consumers: list[ConsumerStatus]
    joins: list[JoinStatus]
    csv: CsvStatus
    notes: list[str] = field(default_factory=list)
    collected_at: str = ""
    quality: QualityStatus | None = None
    drift: DriftStatus | None = None

    def stale(self, threshold_s: float) -> list[ConsumerStatus]:
        return [c for c in self.consumers if c.stale(threshold_s)]

    def firing(self) -> list[str]:
        """The alert rules firing now, quality's and drift's."""
        summaries = (self.quality, self.drift)
        return [key for summary in summaries if summary is not None for key in summary.firing]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def collect(
    config: PipelineConfig, management_url: str, data_dir: Path | None, csv_rows: int | None = None
) -> Status:
    """The pipeline's status now. Raises the broker's errors when its stream
    port cannot be used; a missing management API only leaves gaps (noted).
    `csv_rows`: the CSV's row count, from a caller that follows the file
    already; without it the file is counted."""
    names = config.names
    stream_names = list(names.all() + names.derived())
    notes: list[str] = []
    try:
        queues: dict[str, QueueInfo | None] = await stream_queues(config.broker, management_url, stream_names)
    except ManagementUnavailable as error:
        queues = {}
        notes.append(f"{error}: no retention or message counts")
    now = time.time()
    # One probe at a time: rstream keeps one subscription per stream and
    # connection, and concurrent probes of a stream were seen to cross.
    # Stored offsets first, the streams' ends after: read the other way
    # round, a busy consumer could seem to be past the end.
    consumer = open_consumer(config.broker, config.connection_name("status"))
    await consumer.start()
    try:
        exists = {stream: await consumer.stream_exists(stream) for stream in stream_names}
        stored = {}
        for processor, stream in CONSUMERS:
            name = getattr(names, stream)
            stored[processor, stream] = (
                await stored_offset(consumer, name, names.consumer(processor)) if exists[name] else None)
        streams = [await _stream(consumer, stream, queues.get(stream), data_dir, config.broker.vhost)
                   if exists[stream] else StreamStatus(stream, exists=False) for stream in stream_names]
        ends = {s.name: s for s in streams}
        consumers = [await _consumer(consumer, processor, ends[getattr(names, stream)],
                                     stored[processor, stream], now,
                                     config.checkpoint_path(processor).exists())
                     for processor, stream in CONSUMERS]
    finally:
        await close_quietly(consumer)  # after a dropped connection rstream's close can raise
    if data_dir is not None and all(s.bytes_on_disk is None for s in streams if s.exists):
        notes.append(f"sizes on disk unknown: {data_dir} is not this broker's readable data directory")
    joins = [j for j in (join_status(config, processor) for processor in JOINED) if j is not None]
    rows = RowCounter(config.csv_path).rows() if csv_rows is None else csv_rows
    return Status(streams, consumers, joins, _csv(config.csv_path, rows), notes, _iso(now),
                  read_quality(config.logs_dir), read_drift(config.logs_dir))


async def _stream(
    consumer: rstream.Consumer, stream: str, queue: QueueInfo | None, data_dir: Path | None, vhost: str
) -> StreamStatus:
    # Always probed: the management API's message count lags by seconds.
    first = last = None
    first_position = await position_at(consumer, stream, ConsumerOffsetSpecification(OffsetType.FIRST),
                                       wait_s=PROBE_WAIT_S)
    if first_position is not None:
        end = await last_position(consumer, stream, wait_s=PROBE_WAIT_S)
        first, last = first_position.offset, None if end is None else end.offset
    return StreamStatus(
        stream, exists=True, first=first, last=last,
        messages=None if queue is None else queue.messages,
        bytes_on_disk=None if data_dir is None else stream_bytes(data_dir, vhost, stream),
        segments=None if queue is None else queue.segments,
        retention=None if queue is None else queue.retention,
    )


async def _consumer(
    consumer: rstream.Consumer, processor: str, stream: StreamStatus, stored: int | None, now: float,
    checkpointed: bool,
) -> ConsumerStatus:
    ran = stored is not None or checkpointed
    if not stream.exists:
        return ConsumerStatus(processor, stream.name, None, None, None, None, ran)
    if stream.first is None:  # empty: nothing to be behind on
        return ConsumerStatus(processor, stream.name, stored, None, 0, 0.0, ran)
    if stream.last is None:  # the probe of its end got no answer in time: unknown
        return ConsumerStatus(processor, stream.name, stored, None, None, None, ran)
    first = stream.first
    next_offset = first if stored is None else max(stored + 1, first)
    lag = stream.last - next_offset + 1
    behind_s: float | None = 0.0
    if lag > 0:
        oldest = await position_at(consumer, stream.name,
                                   ConsumerOffsetSpecification(OffsetType.OFFSET, next_offset), PROBE_WAIT_S)
        behind_s = None if oldest is None else max(now - oldest.timestamp_ms / 1000, 0.0)
    return ConsumerStatus(processor, stream.name, stored, stream.last, max(lag, 0), behind_s, ran)


def stream_bytes(data_dir: Path, vhost: str, stream: str) -> int | None:
    """Bytes of a stream's segment and index files, when `data_dir` is the
    broker's data directory (e.g. /var/lib/rabbitmq/mnesia) and readable.

    RabbitMQ keeps each stream in `<node>/stream/<vhost>_<name>_<timestamp>`,
    with `/` in the vhost written as `_`; no API of 3.10 reports the size."""
    folder_prefix = f"{vhost.replace('/', '_')}_{stream}_"
    try:
        folders = sorted(
            (p for p in data_dir.glob(f"*/stream/{folder_prefix}*") if p.name[len(folder_prefix):].isdigit()),
            key=lambda p: int(p.name[len(folder_prefix):]))
        if not folders:
            return None
        return sum(entry.stat().st_size for entry in folders[-1].iterdir())
    except OSError:
        return None


def _csv(path: Path, rows: int) -> CsvStatus:
    try:
        modified = _iso(path.stat().st_mtime)
    except FileNotFoundError:
        modified = None
    last_id = last_row_id(path) if rows else None
    return CsvStatus(str(path), rows, None if last_id is None else _iso(id_time_ms(last_id) / 1000), modified)


def last_row_id(path: Path, tail_bytes: int = 4096) -> str | None:
    """The id of the CSV's last complete row, read from the file's end."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(max(size - tail_bytes, 0))
            lines = file.read().split(b"\n")
    except OSError:
        return None
    complete = [line for line in lines[:-1] if line]  # the last piece is unfinished or empty
    if not complete or complete[-1].startswith(b"id,"):
        return None
    try:
        event_id = complete[-1].split(b",", 1)[0].decode()
        id_time_ms(event_id)
    except ValueError:
        return None
    return event_id


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
