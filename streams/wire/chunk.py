"""A chunk as the broker delivers it, and its messages one by one.

A chunk's data is its entries back to back: a 4-byte size and a message, or
(top bit set) a sub-entry batch of several, which rstream reads (and
uncompresses). Pure: bytes in, messages out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from rstream.schema import SubEntryChunk

_SIZE = struct.Struct(">I")


@dataclass(slots=True)
class Chunk:
    """One delivered chunk: `entries` entries holding `records` messages,
    the first at offset `first_offset`. The first `skip` messages lie before
    where the subscription started."""

    stream: str
    first_offset: int
    timestamp_ms: int  # when the broker stored the chunk (ms since the Unix epoch)
    entries: int
    records: int
    data: bytes
    skip: int = 0

    @property
    def last_offset(self) -> int:
        return self.first_offset + self.records - 1


def messages(chunk: Chunk) -> Iterator[tuple[int, bytes]]:
    """Each message after `skip`, with its offset."""
    data, position, offset = chunk.data, 0, chunk.first_offset
    for _ in range(chunk.entries):
        if data[position] & 0x80 == 0:
            size = _SIZE.unpack_from(data, position)[0]
            position += 4
            batch = [data[position:position + size]]
            position += size
        else:  # a sub-entry batch: rstream reads (and uncompresses) it
            batch, size = SubEntryChunk.read(data, data[position], position + 1)
            position += 1 + size
        for message in batch:
            if offset >= chunk.first_offset + chunk.skip:
                yield offset, message
            offset += 1
