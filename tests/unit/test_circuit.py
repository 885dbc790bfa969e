"""The circuit breaker: closed -> open -> half-open (one probe) -> closed or open."""

from __future__ import annotations

import pytest

from streamcache.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, cooldown_s=5.0, clock=clock)


def test_opens_after_threshold_consecutive_failures() -> None:
    b = breaker(Clock())
    b.failure()
    b.failure()
    assert b.allow() and b.state == CLOSED
    b.failure()
    assert b.state == OPEN
    assert not b.allow()


def test_a_success_resets_the_failure_count() -> None:
    b = breaker(Clock())
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    assert b.state == CLOSED


def test_after_cooldown_exactly_one_probe_is_allowed() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failure()
    clock.now += 4.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow()
    assert b.state == HALF_OPEN
    assert not b.allow()  # a second caller while the probe is in flight


def test_probe_success_closes_and_probe_failure_reopens() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failure()
    clock.now += 5
    assert b.allow()
    b.failure()  # one failure in half-open is enough
    assert b.state == OPEN and not b.allow()
    clock.now += 5
    assert b.allow()
    b.success()
    assert b.state == CLOSED and b.allow()


def test_a_lost_probe_is_retried_after_another_cooldown() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failure()
    clock.now += 5
    assert b.allow()  # probe taken, never reported
    clock.now += 5
    assert b.allow()


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(threshold=0)
