"""The features schedule (pure)."""

from __future__ import annotations

import pytest

from nnmon.processors.core.pace import FULL_SPEED_BATCH, TICK_S, Pace


def test_one_event_is_due_at_once_then_one_per_interval() -> None:
    pace = Pace(0.5)
    assert pace.to_send(100.0, sent=0) == 1
    assert pace.to_send(100.2, sent=1) == 0
    assert pace.wait(100.2, sent=1) == pytest.approx(0.3)
    assert pace.to_send(100.5, sent=1) == 1


def test_behind_schedule_everything_due_goes_at_once() -> None:
    pace = Pace(0.001, tick=0)
    pace.to_send(0.0, sent=0)
    assert pace.to_send(0.0505, sent=1) == 50  # events 1..50 are due by 50.5 ms
    assert pace.wait(0.0505, sent=51) == pytest.approx(0.0005)


def test_at_intervals_shorter_than_a_tick_events_go_a_tick_apart_in_groups() -> None:
    interval = 2**-10  # about 1 ms, and exact in binary: no rounding in the sums
    pace = Pace(interval, tick=5 * interval)
    now, sent, sends = 0.0, 0, []
    while sent < 1001:
        size = pace.to_send(now, sent)
        if size:
            sends.append((now, size))
            sent += size
        now += pace.wait(now, sent)
    assert [size for _, size in sends[1:]] == [5] * 200  # after the first event alone
    assert all(b - a == 5 * interval for (a, _), (b, _) in zip(sends, sends[1:]))
    assert sends[-1][0] == 1000 * interval  # the rate holds: event 1000 goes when due


def test_a_send_waits_for_the_tick_even_with_events_due() -> None:
    pace = Pace(0.001)
    assert pace.to_send(0.0, sent=0) == 1
    assert pace.to_send(0.002, sent=1) == 0
    assert pace.wait(0.002, sent=1) == pytest.approx(TICK_S - 0.002)


def test_an_interval_of_zero_means_as_fast_as_possible() -> None:
    assert Pace(0).to_send(5.0, sent=10_000) == FULL_SPEED_BATCH
    assert Pace(0).to_send(5.0, sent=10_000) == FULL_SPEED_BATCH  # no tick between batches


def test_a_late_send_does_not_delay_the_ones_after() -> None:
    pace = Pace(0.001, tick=0.005)
    assert pace.to_send(0.0, sent=0) == 1
    assert pace.to_send(0.0063, sent=1) == 6  # woken 1.3 ms late: events 1..6
    assert pace.wait(0.0063, sent=7) == pytest.approx(0.0037)  # the grid's next point, 10 ms
