"""Declaring the streams, idempotently, with their retention arguments."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import rstream
from rstream.exceptions import PreconditionFailed

from nnmon.streams.settings import Retention

log = logging.getLogger("nnmon.streams")


async def declare_streams(
    owner: rstream.Producer | rstream.Consumer, streams: Iterable[str], retention: Retention
) -> None:
    """Create each stream unless it exists; an existing stream keeps its arguments."""
    for stream in streams:
        try:
            await owner.create_stream(stream, arguments=retention.arguments(), exists_ok=True)
        except PreconditionFailed:
            # RabbitMQ's answer when the stream exists with other arguments.
            log.warning("stream %s exists with other retention arguments than %s; it keeps its own",
                        stream, retention.arguments())
