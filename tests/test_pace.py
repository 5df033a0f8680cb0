"""The features schedule (pure)."""

from __future__ import annotations

import pytest

from processors.features import FULL_SPEED_BATCH, Pace


def test_one_event_is_due_at_once_then_one_per_interval() -> None:
    pace = Pace(0.5)
    assert pace.due(100.0, sent=0) == 1
    assert pace.due(100.2, sent=1) == 0
    assert pace.wait(100.2, sent=1) == pytest.approx(0.3)
    assert pace.due(100.5, sent=1) == 1


def test_behind_schedule_everything_due_goes_at_once() -> None:
    pace = Pace(0.001)
    pace.due(0.0, sent=0)
    assert pace.due(0.0505, sent=1) == 50  # events 1..50 are due by 50.5 ms
    assert pace.wait(0.0505, sent=51) == pytest.approx(0.0005)


def test_an_interval_of_zero_means_as_fast_as_possible() -> None:
    assert Pace(0).due(5.0, sent=10_000) == FULL_SPEED_BATCH
