"""The reader's metric aggregation: when a flush is due, and the latency sample it publishes."""

from __future__ import annotations

import random

from reader.observe import FLUSH_AFTER, LATENCY_SAMPLES, Pending


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_due_after_100_lookups_or_the_interval_whichever_first() -> None:
    clock = Clock()
    pending = Pending(60.0, clock)
    for _ in range(FLUSH_AFTER - 1):
        pending.latency(0.0)
    assert not pending.due()
    pending.latency(0.0)
    assert pending.due()
    pending.clear()
    assert not pending.due()
    clock.now = 60.0
    assert pending.due()


def test_the_latency_sample_is_bounded_and_drawn_from_every_lookup() -> None:
    pending = Pending(60.0, Clock(), rng=random.Random(1))
    seen_late = False
    for n in range(1000):
        before = list(pending.latencies_ms)
        pending.latency(0.0)
        assert len(pending.latencies_ms) == min(n + 1, LATENCY_SAMPLES)
        seen_late |= n >= LATENCY_SAMPLES and pending.latencies_ms != before
    assert seen_late  # later lookups replace earlier ones in the sample
    assert pending.lookups == 1000
