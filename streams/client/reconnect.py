"""Staying connected: run a body of work, and run it again whenever the
broker goes away, backing off between attempts. The processors and the
client (`nnmon.Monitor`) all keep their connections through `keep_running`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import rstream
import rstream.exceptions

from nnmon.streams.client.connection import BrokerError, StreamDeleted, Watch


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def keep_running(
    body: Callable[[Watch], Awaitable[None]], stop: asyncio.Event, log: logging.Logger,
    max_delay_s: float = 10.0,
) -> None:
    """Run `body(watch)`, and run it again whenever the broker goes away,
    backing off 1, 2, 4... up to `max_delay_s` seconds between attempts.

    A failure before the first connection ever succeeded is raised at once:
    a wrong host or password should say so, not retry forever. A deleted
    stream is raised too: carrying on against a new stream of the same name
    could silently skip or repeat events. So are file errors (disk full).
    """
    delay = 1.0
    ever_connected = False
    while not stop.is_set():
        watch = Watch()
        try:
            await body(watch)
            return
        except (BrokerError, OSError, TimeoutError, rstream.ServerError,
                rstream.exceptions.LeaderNotAvailable) as error:
            if isinstance(error, StreamDeleted) or getattr(error, "filename", None) is not None:
                raise  # a deleted stream, or a file (disk full, no permission): not the broker's absence
            ever_connected = ever_connected or watch.connected
            if not ever_connected:
                raise
            if watch.connected:
                delay = 1.0  # it worked for a while: start backing off afresh
            log.warning("broker unavailable (%s); retrying in %gs", _reason(error), delay)
        finally:
            watch.close()
        await sleep_unless_stopped(stop, delay)
        delay = min(delay * 2, max_delay_s)


def _reason(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return str(error) or type(error).__name__
