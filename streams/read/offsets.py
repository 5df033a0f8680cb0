"""Where to start reading a stream, as people write it on the command line.

Pure: parsing only. RabbitMQ's semantics apply:
- `first`: the first message the stream still holds (retention may have
  removed older ones);
- `last`: the start of the last chunk written (a chunk is a batch of
  messages written together, so this is "the latest few");
- `next`: only messages written after subscribing;
- a number N: the message at offset N and after (inclusive);
- an ISO-8601 time (`2026-11-24T13:00:00Z`; without a zone, local time):
  the first chunk written at or after that time, to the granularity of a
  chunk. A stream's timestamps are the broker's clock when it stored each
  chunk, not the events' own times.
"""

from __future__ import annotations

from datetime import datetime

from rstream import ConsumerOffsetSpecification, OffsetType

_NAMED = {"first": OffsetType.FIRST, "last": OffsetType.LAST, "next": OffsetType.NEXT}


class BadOffset(ValueError):
    """Text that names no stream position; the message says what would."""


def parse_start(where: str) -> ConsumerOffsetSpecification:
    text = where.strip()
    if text.lower() in _NAMED:
        return ConsumerOffsetSpecification(_NAMED[text.lower()], None)
    if text.isdigit():
        return ConsumerOffsetSpecification(OffsetType.OFFSET, int(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadOffset(
            f"{where!r} is not first, last, next, an offset number or an ISO-8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a time without a zone is local time
    return ConsumerOffsetSpecification(OffsetType.TIMESTAMP, int(moment.timestamp() * 1000))
