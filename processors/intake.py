"""Decoding what a processor reads, and reporting what it cannot use.

A malformed or unexpected message never stops a processor and never
vanishes silently: it is logged with its stream, offset and reason, and
counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from streams import codec
from streams.subscription import Record


@dataclass
class Intake:
    log: logging.Logger
    rejected: int = 0

    def decode(self, records: Iterable[Record], *types: type) -> list[tuple[Record, codec.Event]]:
        """The records that decode to one of `types`, with their events."""
        good = []
        for record in records:
            try:
                event = codec.decode(record.data)
                if not isinstance(event, types):
                    raise codec.MalformedEvent(f"unexpected {type(event).__name__} on this stream")
            except codec.MalformedEvent as error:
                self.reject(record, str(error))
                continue
            good.append((record, event))
        return good

    def reject(self, record: Record, reason: str) -> None:
        self.rejected += 1
        self.log.warning(
            "rejected %s offset %d: %s (%d rejected so far)",
            record.stream, record.offset, reason, self.rejected,
        )
