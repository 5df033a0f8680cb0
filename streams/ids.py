"""Event ids: UUID version 7 (RFC 9562) strings.

A UUIDv7 starts with the Unix time in milliseconds and ends with random bits,
so ids are unique across restarts, across several `features` instances and
across time, and they sort in the order they were made. Within one generator
ids are strictly increasing, even when the clock stands still or steps back.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections.abc import Callable

_COUNTER_BITS = 12
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1


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
        hex_digits = f"{_uuid7(self._last_ms, self._counter, self._random_bits(62)):032x}"
        return "-".join((hex_digits[:8], hex_digits[8:12], hex_digits[12:16], hex_digits[16:20],
                         hex_digits[20:]))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _uuid7(unix_ms: int, counter: int, tail: int) -> int:
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (counter & _COUNTER_MAX) << 64
    value |= 0b10 << 62
    value |= tail & ((1 << 62) - 1)
    return value


def id_time_ms(event_id: str) -> int:
    """The Unix time in milliseconds at which a UUIDv7 id was made."""
    return uuid.UUID(event_id).int >> 80
