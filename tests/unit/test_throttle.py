"""run.throttle.Every: at most once every so many seconds, on an injected clock."""

from __future__ import annotations

import pytest

from nnmon.processors.run.throttle import Every


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_due_at_once_then_once_per_period() -> None:
    clock = Clock()
    every = Every(5.0, clock)
    assert every.due()
    assert not every.due()
    clock.now += 4.9
    assert not every.due()
    clock.now += 0.1
    assert every.due()
    assert every.since() == 0.0


def test_wait_first_is_not_due_until_a_period_has_passed() -> None:
    clock = Clock()
    every = Every(2.0, clock, wait_first=True)
    assert not every.due()
    clock.now += 2.0
    assert every.due()


def test_passed_does_not_count_as_done() -> None:
    clock = Clock()
    every = Every(1.0, clock, wait_first=True)
    assert not every.passed()
    clock.now += 1.0
    assert every.passed() and every.passed()  # still passed: nothing was done
    every.done()
    assert not every.passed()


def test_done_restarts_the_period() -> None:
    clock = Clock()
    every = Every(1.0, clock)
    clock.now += 0.5
    every.done()  # a forced write, say
    clock.now += 0.9
    assert not every.due() and every.since() == pytest.approx(0.9)
    clock.now += 0.1
    assert every.due()
