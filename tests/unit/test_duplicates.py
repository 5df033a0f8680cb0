"""Unit tests for nnmon.processors.core.duplicates: the duplicate rule, against
a set of every id ever seen (exact, unbounded)."""

from __future__ import annotations

import json
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from nnmon.processors.core.duplicates import BLOCK, SeenIds, Verdict
from nnmon.streams.events import ids

NOW_MS = 1_790_000_000_000


def generator(start_ms: int = NOW_MS, step_ms: int = 1) -> ids.IdGenerator:
    return ids.IdGenerator(clock_ms=iter(range(start_ms, start_ms + 10**9 * step_ms, step_ms)).__next__)


def rule(blocks: int = 2) -> SeenIds:
    return SeenIds(ids.time_key, blocks * BLOCK)


def test_the_first_counts_and_a_repeat_does_not() -> None:
    seen = rule()
    assert seen.first_time("a", NOW_MS)
    assert seen.verdict("a", NOW_MS) is Verdict.REPEATED
    assert not seen.first_time("a", NOW_MS)
    assert seen.first_time("b", NOW_MS)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 100_000), min_size=1, max_size=6_000), st.integers(1, 3))
def test_ids_in_time_order_are_judged_exactly_at_any_distance(repeats: list[int], blocks: int) -> None:
    """Own ids come in time order: the bounded rule refuses exactly the
    repeats an unbounded set finds, however far back the first one was."""
    made = generator()
    written: list[str] = []
    seen, everything = rule(blocks), set()
    for n in repeats:
        if n % 3 == 0 and written:  # a repeat of any earlier event
            event_id = written[n % len(written)]
        else:
            event_id = made.next_id()
            written.append(event_id)
        assert seen.first_time(event_id, NOW_MS + 10**6) is (event_id not in everything)
        everything.add(event_id)
    assert len(seen) <= blocks * BLOCK + BLOCK


def test_memory_is_bounded_and_a_late_new_id_is_refused_as_too_old() -> None:
    made, seen = generator(), rule(blocks=2)
    late = made.next_id()  # made first, written last
    for _ in range(10 * BLOCK):
        seen.first_time(made.next_id(), NOW_MS + 10**6)
    assert len(seen) < 3 * BLOCK
    assert seen.verdict(late, NOW_MS + 10**6) is Verdict.TOO_OLD


def test_ids_without_a_time_are_recognised_within_the_capacity_only() -> None:
    seen = rule(blocks=1)
    foreign = [f"order-{i}" for i in range(3 * BLOCK)]
    for key in foreign:
        assert seen.first_time(key, NOW_MS)
    assert seen.verdict(foreign[-1], NOW_MS) is Verdict.REPEATED
    assert seen.verdict(foreign[0], NOW_MS) is Verdict.NEW, "forgotten, and it has no time to tell"
    random_v4 = str(uuid.uuid4())
    assert ids.time_key(random_v4, NOW_MS) is None
    assert seen.verdict(random_v4, NOW_MS) is Verdict.NEW


def test_a_writer_with_its_clock_far_ahead_does_not_make_other_ids_old() -> None:
    seen = rule(blocks=1)
    ahead = generator(start_ms=NOW_MS + 365 * 86_400_000)
    for _ in range(3 * BLOCK):
        seen.first_time(ahead.next_id(), NOW_MS)
    assert ids.time_key(ahead.next_id(), NOW_MS) is None
    assert seen.first_time(generator(start_ms=NOW_MS - 1000).next_id(), NOW_MS)


def test_a_slightly_late_id_within_the_capacity_counts() -> None:
    """Several writers interleave: an id a little older than others admitted
    is new as long as what was forgotten is older still."""
    early, late = generator(NOW_MS), generator(NOW_MS + 500)
    seen = rule(blocks=2)
    for _ in range(BLOCK):
        assert seen.first_time(late.next_id(), NOW_MS + 1000)
        assert seen.first_time(early.next_id(), NOW_MS + 1000)


def test_time_keys_sort_as_times_do() -> None:
    made = generator(step_ms=7919)
    keys = [ids.time_key(made.next_id(), NOW_MS + 10**10) for _ in range(100)]
    assert keys == sorted(keys) and len(set(keys)) == 100
    event_id = made.next_id()
    assert ids.time_key(event_id.upper(), NOW_MS + 10**10) is None
    assert ids.time_key_of_ms(ids.id_time_ms(event_id)) == ids.time_key(event_id, NOW_MS + 10**10)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=3_000), st.sets(st.integers(0, 3_000)))
def test_checkpoints_anywhere_change_nothing(choices: list[int], cuts: set[int]) -> None:
    """Saved and restored at any point (through JSON), the rule gives the
    verdicts it gives uninterrupted: live batches of any size and a replay agree."""
    made = generator()
    written = [made.next_id() for _ in range(len(choices))]
    stream = [written[max(0, i - c)] if c > 30 else written[i] for i, c in enumerate(choices)]
    whole, interrupted = rule(blocks=1), rule(blocks=1)
    for i, event_id in enumerate(stream):
        if i in cuts:
            state = json.loads(json.dumps(interrupted.to_state()))
            interrupted = SeenIds.from_state(state, ids.time_key, BLOCK)
        assert interrupted.first_time(event_id, NOW_MS) is whole.first_time(event_id, NOW_MS)
    assert interrupted == whole


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 60), max_size=700), max_size=12))
def test_a_chunk_at_once_gives_what_one_id_at_a_time_gives(chunks: list[list[int]]) -> None:
    """Ids from two writers, one 2 s behind the other (out of time order),
    with repeats."""
    ahead, behind = generator(NOW_MS + 2000), generator(NOW_MS)
    written = [(ahead if n % 3 else behind).next_id() for n in range(sum(map(len, chunks)))]
    at_once, one_by_one, n = rule(blocks=1), rule(blocks=1), 0
    for chunk in chunks:
        event_ids = []
        for c in chunk:  # mostly new ids, some repeats from any distance back
            event_ids.append(written[max(0, n - c * 40)] if c > 50 else written[n])
            n += 1
        broker_ms = NOW_MS + 10_000
        assert at_once.first_times(event_ids, broker_ms) == [one_by_one.first_time(i, broker_ms)
                                                             for i in event_ids]
    assert at_once == one_by_one
