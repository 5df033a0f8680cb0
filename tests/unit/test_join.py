"""Unit tests for nnmon.processors.core.join: the bounded join of y_true and y_pred by id."""

from __future__ import annotations

import json

from nnmon.processors.core.duplicates import BLOCK, CAPACITY, SeenIds
from nnmon.processors.core.join import Expired, Half, IdJoin, JoinCounts, Pair, Refused, Side
from nnmon.streams.events import ids

T, P = Side.TRUTH, Side.PREDICTION


def half(value: float, event_ms: int = 0, offset: int = 0) -> Half:
    return Half(value, offset, event_ms)


def new_join(window_ms: int = 3_600_000, max_pending: int = 100_000, capacity: int = CAPACITY) -> IdJoin:
    return IdJoin(SeenIds(ids.time_key, capacity), window_ms, max_pending)


def add_all(join: IdJoin, items: list[tuple[Side, str, Half]]) -> list[Pair]:
    pairs = [join.add(side, event_id, h) for side, event_id, h in items]
    return [p for p in pairs if isinstance(p, Pair)]


def test_truth_first() -> None:
    join = new_join()
    assert join.add(T, "a", half(10.0)) is None
    assert join.add(P, "a", half(12.5)) == Pair("a", 10.0, 12.5)
    assert join.counts == JoinCounts(joined=1)
    assert join.pending_count() == 0


def test_prediction_first() -> None:
    join = new_join()
    assert join.add(P, "a", half(12.5)) is None
    assert join.add(T, "a", half(10.0)) == Pair("a", 10.0, 12.5)
    assert join.counts == JoinCounts(joined=1)
    assert join.pending_count() == 0


def test_different_ids_do_not_pair() -> None:
    join = new_join()
    assert join.add(T, "a", half(1.0)) is None
    assert join.add(P, "b", half(2.0)) is None
    assert join.pending_count() == 2
    assert join.counts.joined == 0


def test_absolute_error() -> None:
    assert Pair("a", 3.0, 5.5).absolute_error == 2.5
    assert Pair("a", 5.5, 3.0).absolute_error == 2.5
    assert Pair("a", -1.0, -1.0).absolute_error == 0.0


def test_duplicate_is_counted_and_the_first_kept() -> None:
    join = new_join()
    join.add(T, "a", half(1.0, offset=1))
    assert join.add(T, "a", half(99.0, offset=2)) == Refused("duplicate y_true for id a")
    assert join.counts.duplicates == 1
    assert join.pending_count() == 1
    assert join.add(P, "a", half(4.0)) == Pair("a", 1.0, 4.0)


def test_expiry_by_event_time_window() -> None:
    join = new_join(window_ms=100)
    add_all(join, [(T, "old", half(1.0, 0)), (P, "edge", half(2.0, 50)), (T, "new", half(3.0, 120))])
    # newest_ms = 120, horizon = 20: "old" (0) is out, "edge" (50) and "new" stay.
    assert join.expire() == [Expired("old", T, half(1.0, 0))]
    assert join.counts.expired == 1
    assert join.pending_count() == 2


def test_event_exactly_at_the_horizon_stays() -> None:
    join = new_join(window_ms=100)
    add_all(join, [(T, "a", half(1.0, 20)), (P, "b", half(2.0, 120))])
    assert join.expire() == []
    join.add(P, "c", half(3.0, 121))
    assert [e.id for e in join.expire()] == ["a"]


def test_expiry_returns_the_oldest_first() -> None:
    join = new_join(window_ms=10)
    add_all(join, [(T, f"t{i}", half(float(i), i)) for i in range(5)])
    add_all(join, [(P, "late", half(0.0, 100))])
    assert [e.id for e in join.expire()] == ["t0", "t1", "t2", "t3", "t4"]
    assert join.counts.expired == 5


def test_expiry_by_max_pending_per_side() -> None:
    join = new_join(max_pending=3)
    add_all(join, [(T, f"t{i}", half(float(i), i)) for i in range(5)])
    add_all(join, [(P, f"p{i}", half(float(i), i)) for i in range(3)])
    expired = join.expire()
    # Only the truth side is over its bound; its two oldest leave.
    assert expired == [Expired("t0", T, half(0.0, 0)), Expired("t1", T, half(1.0, 1))]
    assert join.counts.expired == 2
    assert join.pending_count() == 6
    assert set(join.pending[T]) == {"t2", "t3", "t4"}


def test_matching_continues_after_expiries() -> None:
    join = new_join(window_ms=100, max_pending=2)
    add_all(join, [(T, "a", half(1.0, 0)), (T, "b", half(2.0, 150)), (T, "c", half(3.0, 160))])
    assert [e.id for e in join.expire()] == ["a"]
    assert join.add(P, "a", half(5.0, 170)) is None  # its partner is gone: it now waits
    assert join.add(P, "c", half(7.0, 170)) == Pair("c", 3.0, 7.0)
    add_all(join, [(T, "d", half(4.0, 180))])
    assert join.add(P, "b", half(2.5, 190)) == Pair("b", 2.0, 2.5)
    assert join.counts == JoinCounts(joined=2, expired=1, duplicates=0)
    assert join.pending_count() == 2  # y_pred "a" and y_true "d"


def test_pending_count() -> None:
    join = new_join()
    assert join.pending_count() == 0
    add_all(join, [(T, "a", half(1.0)), (T, "b", half(1.0)), (P, "c", half(1.0))])
    assert join.pending_count() == 3
    join.add(P, "a", half(1.0))
    assert join.pending_count() == 2


def test_state_round_trip_through_json() -> None:
    join = new_join(window_ms=1_000, max_pending=10)
    add_all(
        join,
        [
            (T, "a", half(1.5, 100, offset=7)),
            (P, "b", half(-2.25, 200, offset=8)),
            (T, "b", half(3.0, 250, offset=9)),
            (T, "a", half(9.0, 260, offset=10)),
            (P, "c", half(0.1, 300, offset=11)),
        ],
    )
    state = json.loads(json.dumps(join.to_state()))
    restored = IdJoin.from_state(state, ids.time_key, window_ms=1_000, max_pending=10)
    assert restored == join

    # Both behave the same from here on.
    for j in (join, restored):
        assert j.add(P, "a", half(2.0, 5_000)) == Pair("a", 1.5, 2.0)
        assert j.expire() == [Expired("c", P, half(0.1, 300, offset=11))]
    assert restored == join
    assert restored.counts == JoinCounts(joined=2, expired=1, duplicates=1)


def test_an_id_gives_one_pair_however_often_either_side_comes_again() -> None:
    join = new_join()
    assert add_all(join, [(T, "a", half(1.0)), (P, "a", half(2.0))]) == [Pair("a", 1.0, 2.0)]
    assert join.add(T, "a", half(1.0)) == Refused("duplicate y_true for id a: its prediction already "
                                                 "joined or expired")
    assert join.add(P, "a", half(2.0)) == Refused("duplicate y_pred for id a")
    assert join.counts == JoinCounts(joined=1, duplicates=2)
    assert join.pending_count() == 0, "a repeat does not wait for a partner"


def test_a_truth_may_come_long_after_its_prediction_and_in_any_order() -> None:
    join = new_join()
    made = ids.IdGenerator(clock_ms=iter(range(0, 10**9, 1000)).__next__)
    keys = [made.next_id() for _ in range(10)]
    for i, key in enumerate(keys):
        assert join.add(P, key, half(float(i), event_ms=i * 1000)) is None
    pairs = add_all(join, [(T, key, half(0.0, event_ms=50_000)) for key in reversed(keys)])
    assert [p.id for p in pairs] == keys[::-1]


def test_a_repeat_far_beyond_what_the_join_remembers_is_still_refused() -> None:
    join = new_join(capacity=BLOCK)
    made = ids.IdGenerator(clock_ms=iter(range(10**12, 10**13)).__next__)
    first = made.next_id()
    assert add_all(join, [(T, first, half(1.0, 10**12)), (P, first, half(2.0, 10**12))])
    for _ in range(3 * BLOCK):
        key = made.next_id()
        add_all(join, [(T, key, half(1.0, 10**12)), (P, key, half(2.0, 10**12))])
    assert join.counts.joined == 3 * BLOCK + 1
    assert isinstance(join.add(T, first, half(1.0, 2 * 10**12)), Refused)
    assert isinstance(join.add(P, first, half(2.0, 2 * 10**12)), Refused)
    assert join.pending_count() == 0
