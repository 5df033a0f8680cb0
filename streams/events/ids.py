"""Event ids: UUID version 7 (RFC 9562) strings.

A UUIDv7 starts with the Unix time in milliseconds and ends with random bits,
so ids are unique across restarts, across several `features` instances and
across time, and they sort in the order they were made. Within one generator
ids are strictly increasing, even when the clock stands still or steps back.
"""

from __future__ import annotations

import functools
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable

_COUNTER_BITS = 12
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_MS_MASK = (1 << 48) - 1
_VARIANT = 0b10 << 62  # RFC 9562's, above the 62 random bits


class IdGenerator:
    """Makes strictly increasing UUIDv7 strings.

    `clock_ms` and `random_bits` are injectable so tests can pin them.
    """

    def __init__(
        self,
        clock_ms: Callable[[], int] | None = None,
        random_bits: Callable[[int], int] | None = None,
    ) -> None:
        self._clock_ms = clock_ms or _now_ms
        # Seeded once from the OS: unique per generator, and no system call
        # per id (secrets.randbits makes one each time).
        self._random_bits = random_bits or random.Random(secrets.randbits(128)).getrandbits
        self._last_ms = -1
        self._counter = 0
        self._head_ms = -1
        self._head = ""  # the id's text up to the counter, for `_head_ms`

    def next_id(self) -> str:
        now_ms = self._clock_ms()
        if now_ms > self._last_ms:
            self._last_ms = now_ms
            # Start the counter low but random, leaving room to count up.
            self._counter = self._random_bits(_COUNTER_BITS - 1)
        else:
            self._counter += 1
            if self._counter > _COUNTER_MAX:
                # More ids in this millisecond than the counter holds: borrow
                # the next millisecond rather than repeat or go backwards.
                self._last_ms += 1
                self._counter = 0
        if self._head_ms != self._last_ms:
            # The time and version are the same for every id of a millisecond:
            # written once (an id then takes 1.0 us, against 2.1 us in one piece).
            self._head_ms = self._last_ms
            digits = f"{self._last_ms & _MS_MASK:012x}"
            self._head = f"{digits[:8]}-{digits[8:]}-7"
        tail = f"{_VARIANT | self._random_bits(62):016x}"
        return f"{self._head}{self._counter:03x}-{tail[:4]}-{tail[4:]}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def id_time_ms(event_id: str) -> int:
    """The Unix time in milliseconds at which a UUIDv7 id was made."""
    return uuid.UUID(event_id).int >> 80


# A canonical UUIDv7 as `IdGenerator` writes it: lower-case hex, the version
# digit 7, RFC 9562's variant.
_UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# How far ahead of the broker's clock an id's time may be and still count as
# a time: a writer with its clock a year ahead must not make everyone else's
# ids look old to the duplicate rule.
MAX_AHEAD_MS = 60_000


def time_key(event_id: str, broker_ms: int) -> str | None:
    """The time in a UUIDv7 id as text that sorts as the time does (its first
    13 characters: 48 bits of milliseconds in fixed-width hex), for an event
    the broker stored at `broker_ms`. None for any other id, and for an id
    more than MAX_AHEAD_MS ahead of the broker's clock."""
    if _UUID7.fullmatch(event_id) is None:
        return None
    key = event_id[:13]
    return key if key <= time_key_of_ms(broker_ms + MAX_AHEAD_MS) else None


@functools.lru_cache(maxsize=16)  # called per event, with few distinct chunk times at once
def time_key_of_ms(ms: int) -> str:
    """A time as `time_key` writes it."""
    digits = f"{ms & _MS_MASK:012x}"
    return f"{digits[:8]}-{digits[8:]}"


def prediction_times(event_ids: list[str], stored_ms: list[int]) -> list[int]:
    """When each event's model spoke (ms since the epoch): the time in its id
    for a UUIDv7 id (nnmon's own, and the `Monitor` client's: the moment its
    features were made), else when the broker stored its prediction. Not the
    message's own creation_time, which any publisher may set wrong, and one
    time far ahead would close every window at once; for the same reason an
    id more than MAX_AHEAD_MS ahead of its prediction counts as no time."""
    times = []
    for event_id, stored in zip(event_ids, stored_ms):
        if _UUID7.fullmatch(event_id) is None:
            times.append(stored)
            continue
        made = int(event_id[:8] + event_id[9:13], 16)
        times.append(made if made <= stored + MAX_AHEAD_MS else stored)
    return times
