"""Decoding what a processor reads, and reporting what it cannot use.

A malformed or unexpected message never stops a processor and never
vanishes silently: it is logged with its stream, offset and reason, counted,
and (for processors given a publisher) copied to the `rejected` stream with
the reason and its source stream and offset.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from nnmon.processors.core.join import Expired, Side
from nnmon.streams.client.publisher import ConfirmedPublisher
from nnmon.streams.events import codec
from nnmon.streams.read.merge import Record
from nnmon.streams.wire.chunk import Chunk, messages

E = TypeVar("E", codec.FeaturesEvent, codec.TruthEvent, codec.PredictionEvent)


@dataclass
class Intake:
    log: logging.Logger
    processor: str
    keep_rejects: bool = True  # False: log and count only
    rejected: int = 0
    _unpublished: list[codec.Rejected] = field(default_factory=list)

    def decode(self, record: Record, *expected: type[E]) -> E | None:
        """The record's event if it decodes to one of the `expected` types;
        otherwise None, after reporting it."""
        event = record.event
        if event is None:
            # Another writer's message may leave its type to the stream.
            stream_type = codec.EVENT_TYPES[expected[0]] if len(expected) == 1 else None
            try:
                event = codec.decode(record.data, stream_type, record.timestamp_ms)
            except codec.MalformedEvent as error:
                self.reject(record, str(error))
                return None
        if not isinstance(event, expected):
            self.reject(record, f"a {type(event).__name__} does not belong on {record.stream}")
            return None
        return event

    def decode_messages(self, chunk: Chunk, expected: type[E]) -> list[tuple[int, E]]:
        """The chunk's events with their offsets, decoded message by message
        (for a chunk `nnmon.streams.events.chunks` cannot read at once), with what does
        not decode reported."""
        decoded = []
        for offset, data in messages(chunk):
            event = self.decode(Record(chunk.stream, offset, chunk.timestamp_ms, data), expected)
            if event is not None:
                decoded.append((offset, event))
        return decoded

    def reject(self, record: Record, reason: str) -> None:
        self.rejected += 1
        self.log.warning(
            "rejected %s offset %d: %s (%d rejected so far)",
            record.stream, record.offset, reason, self.rejected,
        )
        if self.keep_rejects:
            self._unpublished.append(codec.Rejected(
                reason, record.stream, record.offset, self.processor,
                record.data[: codec.REJECTED_KEEP_BYTES], len(record.data),
            ))

    def reject_expired(self, expired: list[Expired], stream_of: dict[Side, str]) -> None:
        """Report events that waited out the join window with no partner."""
        for item in expired:
            reason = f"no {item.side.other.value} for id {item.id} within the join window"
            if self.keep_rejects:
                self._unpublished.append(codec.Rejected(
                    reason, stream_of[item.side], item.half.offset, self.processor, b"", 0))

    async def publish_rejects(self, publisher: ConfirmedPublisher, stream: str) -> None:
        """Copy the rejects so far to `stream`; call before storing the
        offsets that cover them, so a crash repeats a reject, never loses it."""
        await (await self.send_rejects(publisher, stream))

    async def send_rejects(self, publisher: ConfirmedPublisher, stream: str) -> Awaitable[None]:
        """Like `publish_rejects`, but return what to await for the confirms."""
        rejects, self._unpublished = self._unpublished, []
        # In offset order per stream: model rejects a prediction that
        # overflows only after decoding (and rejecting) the whole batch.
        rejects.sort(key=lambda r: (r.source_stream, r.source_offset))
        return await publisher.send(stream, [codec.encode_rejected(r) for r in rejects])

    def forget_rejects(self) -> None:
        """Drop unpublished rejects: the records will be read (and rejected) again."""
        self._unpublished.clear()
