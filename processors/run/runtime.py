"""Running a processor: logging, stopping on SIGINT/SIGTERM, clean errors."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from enum import Enum


class UsageError(Exception):
    """A wrong option or input file; the text says what to do. Exit status 2."""


class LogFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


def setup_logging(debug: bool = False, log_format: LogFormat = LogFormat.TEXT) -> None:
    """Log lines to stderr: human-readable, or one JSON object per line
    (time, level, logger, message) for log shippers."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
        ))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler], force=True)
    # rstream logs a traceback for every connection problem it retries;
    # our own lines say what matters.
    logging.getLogger("rstream").setLevel(logging.DEBUG if debug else logging.CRITICAL)


# plot and drift read the streams metric reads, on the same cores, but are
# not on the path to the CSV, and lag changes none of their results (a PNG
# redrawn every few seconds; windows closed by watermarks). So they run at
# the usual "background job" niceness (what `nice` uses): on busy cores the
# processors on the path go first, and the others catch up when there is CPU
# to spare. On the 2-core bench: 12,000 or 20,000 events/s end to end
# depending on whether plot kept up, 20,000 every time once plot yielded;
# 22,400 with drift beside at normal priority, 25,200 with drift yielding.
BACKGROUND_NICENESS = 10


def lower_priority() -> int:
    """Make this process yield the CPU to the others; its new niceness."""
    return os.nice(BACKGROUND_NICENESS)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on another C library."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim).

    glibc returns freed memory only from the top of its heap, so after a
    burst (a batch of large messages, a drawing) the freed pages in the
    middle stay resident. Measured: 1-3 ms on a heap of some tens of MB."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for bulk work that builds
    many long-lived objects and no reference cycles, such as a replay's
    hundreds of thousands of events: the collector would only scan them
    again and again (measured: 13% of a replay's CPU). Reference counting
    frees everything as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_until_stopped(main: Callable[[asyncio.Event], Awaitable[object]]) -> None:
    """Run `main(stop)` in a fresh event loop; SIGINT/SIGTERM set `stop`, and
    `main` is expected to flush, store offsets and return."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    asyncio.run(runner())
