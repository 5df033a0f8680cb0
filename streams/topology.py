"""Declaring the streams, idempotently, with their retention arguments."""

from __future__ import annotations

from collections.abc import Iterable

import rstream

from streams.settings import Retention


async def declare_streams(
    owner: rstream.Producer | rstream.Consumer, streams: Iterable[str], retention: Retention
) -> None:
    """Create each stream unless it exists; an existing stream keeps its arguments."""
    for stream in streams:
        await owner.create_stream(stream, arguments=retention.arguments(), exists_ok=True)
