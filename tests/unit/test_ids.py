"""Unit tests for nnmon.streams.events.ids: UUIDv7 ids that are unique and strictly increasing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from hypothesis import given
from hypothesis import strategies as st

from nnmon.streams.events.ids import IdGenerator, id_time_ms

T0 = 1_700_000_000_123  # a fixed Unix time in ms


def fixed_clock(ms: int) -> Callable[[], int]:
    return lambda: ms


def scripted_clock(readings: Iterable[int]) -> Callable[[], int]:
    """A clock that returns `readings` one by one."""
    iterator = iter(readings)
    return lambda: next(iterator)


def max_random(bits: int) -> int:
    """The largest value of `bits` random bits, to push the counter to its limit."""
    return (1 << bits) - 1


def assert_strictly_increasing(ids: list[str]) -> None:
    as_uuids = [uuid.UUID(i) for i in ids]
    assert all(a < b for a, b in zip(ids, ids[1:])), "not increasing as strings"
    assert all(a.int < b.int for a, b in zip(as_uuids, as_uuids[1:])), "not increasing as UUIDs"


def test_increasing_within_one_millisecond() -> None:
    generator = IdGenerator(clock_ms=fixed_clock(T0))
    ids = [generator.next_id() for _ in range(1000)]
    assert_strictly_increasing(ids)
    assert {id_time_ms(i) for i in ids} == {T0}


def test_increasing_when_the_clock_steps_back() -> None:
    readings = [T0, T0, T0 - 1, T0 - 5_000, T0 - 5_000, T0 + 1, T0, T0 + 2]
    generator = IdGenerator(clock_ms=scripted_clock(readings))
    ids = [generator.next_id() for _ in readings]
    assert_strictly_increasing(ids)
    # Time never goes below the latest reading seen so far.
    latest = 0
    for reading, event_id in zip(readings, ids):
        latest = max(latest, reading)
        assert id_time_ms(event_id) >= latest


def test_version_and_variant_bits() -> None:
    generator = IdGenerator(clock_ms=fixed_clock(T0))
    for _ in range(100):
        value = uuid.UUID(generator.next_id())
        assert value.version == 7
        assert value.variant == uuid.RFC_4122


def test_id_time_ms_gives_back_the_clock() -> None:
    for ms in [0, 1, T0, (1 << 48) - 1]:
        assert id_time_ms(IdGenerator(clock_ms=fixed_clock(ms)).next_id()) == ms


def test_default_clock_is_unix_time_in_ms() -> None:
    before = time.time_ns() // 1_000_000
    event_id = IdGenerator().next_id()
    after = time.time_ns() // 1_000_000
    assert before <= id_time_ms(event_id) <= after


def test_counter_overflow_borrows_the_next_millisecond() -> None:
    # With maximal random bits the 12-bit counter starts at 2**11 - 1 = 2047,
    # so the ms holds ids with counters 2047..4095: 2049 ids, then T0 + 1.
    generator = IdGenerator(clock_ms=fixed_clock(T0), random_bits=max_random)
    ids = [generator.next_id() for _ in range(3 * 4096)]
    assert_strictly_increasing(ids)
    times = [id_time_ms(i) for i in ids]
    assert times[:2049] == [T0] * 2049
    assert times[2049] == T0 + 1
    assert times == sorted(times)
    assert max(times) <= T0 + 3


def test_clock_catching_up_after_a_borrow_stays_increasing() -> None:
    readings = [T0] * 3000 + [T0 + 1] * 10 + [T0 + 2]
    generator = IdGenerator(clock_ms=scripted_clock(readings), random_bits=max_random)
    ids = [generator.next_id() for _ in readings]
    assert_strictly_increasing(ids)
    assert id_time_ms(ids[-1]) == T0 + 2


def test_two_generators_with_the_same_clock_never_collide() -> None:
    first = IdGenerator(clock_ms=fixed_clock(T0))
    second = IdGenerator(clock_ms=fixed_clock(T0))
    ids_first = {first.next_id() for _ in range(2000)}
    ids_second = {second.next_id() for _ in range(2000)}
    assert len(ids_first) == len(ids_second) == 2000
    assert ids_first.isdisjoint(ids_second)


@given(st.integers(0, (1 << 48) - 1), st.integers(0, (1 << 62) - 1), st.integers(1, 3))
def test_an_id_is_the_canonical_text_of_its_uuid(ms: int, random: int, count: int) -> None:
    """Time, version, counter, variant and random bits where RFC 9562 puts
    them, written as `uuid` writes them; the counter counts up within the ms."""
    generator = IdGenerator(clock_ms=fixed_clock(ms), random_bits=lambda bits: random & ((1 << bits) - 1))
    first_counter = random & ((1 << 11) - 1)
    for n in range(count):
        expected = ms << 80 | 0x7 << 76 | (first_counter + n) << 64 | 0b10 << 62 | random
        assert generator.next_id() == str(uuid.UUID(int=expected))
