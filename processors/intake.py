"""Decoding what a processor reads, and reporting what it cannot use.

A malformed or unexpected message never stops a processor and never
vanishes silently: it is logged with its stream, offset and reason, and
counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from streams import codec
from streams.subscription import Record

E = TypeVar("E", codec.FeaturesEvent, codec.TruthEvent, codec.PredictionEvent)


@dataclass
class Intake:
    log: logging.Logger
    rejected: int = 0

    def decode(self, record: Record, *expected: type[E]) -> E | None:
        """The record's event if it decodes to one of the `expected` types;
        otherwise None, after reporting it."""
        try:
            event = codec.decode(record.data)
        except codec.MalformedEvent as error:
            self.reject(record, str(error))
            return None
        if not isinstance(event, expected):
            self.reject(record, f"a {type(event).__name__} does not belong on {record.stream}")
            return None
        return event

    def reject(self, record: Record, reason: str) -> None:
        self.rejected += 1
        self.log.warning(
            "rejected %s offset %d: %s (%d rejected so far)",
            record.stream, record.offset, reason, self.rejected,
        )
