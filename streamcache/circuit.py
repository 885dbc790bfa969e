"""A circuit breaker, so a dead Redis costs one timeout per cooldown, not one per request.

closed --(``threshold`` consecutive failures)--> open
open   --(``cooldown_s`` elapsed)-------------> half-open: one caller probes
half-open --probe succeeds--> closed;  --probe fails--> open again (new cooldown)

While open (and while a probe is in flight) ``allow()`` is False and callers
skip Redis entirely. Thread-safe: the reader is single-threaded per Lambda
environment, but tests and local tools run many readers on one breaker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 3,
        cooldown_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown_s <= 0:
            raise ValueError("circuit breaker needs threshold >= 1 and cooldown_s > 0")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def allow(self) -> bool:
        """May the caller use Redis now? In half-open, only the one probing caller may."""
        if self._state == CLOSED:  # hot path: no lock, a stale read only delays by one call
            return True
        with self._lock:
            now = self._clock()
            # A probe that never reported (its caller died) is retried after another cooldown.
            if now - self._opened_at >= self.cooldown_s:
                self._state, self._opened_at = HALF_OPEN, now
                return True
            return False

    def success(self) -> None:
        if self._state == CLOSED and self._failures == 0:
            return
        with self._lock:
            self._state, self._failures = CLOSED, 0

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.threshold:
                self._state, self._opened_at = OPEN, self._clock()
