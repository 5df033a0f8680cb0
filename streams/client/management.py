"""What RabbitMQ's management HTTP API says about our streams.

The stream protocol of RabbitMQ 3.10 tells neither a stream's retention
arguments nor how many messages it holds; the management plugin does. It is
optional: without it, status shows less, and says why.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from nnmon.streams.settings import BrokerSettings

MANAGEMENT_PORT = 15672


class ManagementUnavailable(Exception):
    """The management API could not be asked; the text says why."""


@dataclass(frozen=True)
class QueueInfo:
    """The management API's view of one stream."""

    messages: int | None
    retention: dict[str, Any]  # x-max-age etc.: the stream's arguments, then its policy's
    segments: int | None  # RabbitMQ 4 reports segment files; 3.10 does not


def default_url(settings: BrokerSettings) -> str:
    return f"http://{settings.host}:{MANAGEMENT_PORT}"


async def stream_queues(
    settings: BrokerSettings, url: str, streams: list[str], timeout_s: float = 5.0
) -> dict[str, QueueInfo | None]:
    """Each stream's info; None for a stream the broker does not have."""
    auth = aiohttp.BasicAuth(settings.user, settings.password)
    vhost = quote(settings.vhost, safe="")
    try:
        async with aiohttp.ClientSession(
            auth=auth, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as session:
            found = await asyncio.gather(*(
                _queue(session, f"{url.rstrip('/')}/api/queues/{vhost}/{quote(stream, safe='')}")
                for stream in streams
            ))
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ManagementUnavailable(f"management API at {url}: {_reason(error)}") from None
    return dict(zip(streams, found))


async def _queue(session: aiohttp.ClientSession, address: str) -> QueueInfo | None:
    async with session.get(address) as response:
        if response.status == 404:
            return None
        if response.status == 401:
            raise ManagementUnavailable("management API refused the login (the user needs the "
                                        "'management' tag)")
        response.raise_for_status()
        data = await response.json()
    arguments = {k: v for k, v in data.get("arguments", {}).items() if k != "x-queue-type"}
    policy = data.get("effective_policy_definition") or {}
    return QueueInfo(
        messages=data.get("messages"),
        retention={**arguments, **{k: v for k, v in policy.items() if k in _RETENTION_KEYS}},
        segments=data.get("segments"),
    )


_RETENTION_KEYS = ("max-age", "max-length-bytes", "stream-max-segment-size-bytes")


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status} {error.message}"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connection refused" if isinstance(error.os_error, ConnectionRefusedError) else str(error)
    return str(error) or type(error).__name__
