"""Small statistics over timings. Pure: no clock, no I/O."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1), as ``streamcache.lag`` reports it."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentile fraction {fraction!r} is not between 0 and 1")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def rate(count: int, seconds: float) -> float:
    """Items per second; infinite when no time could be measured."""
    return math.inf if seconds <= 0 else count / seconds


def ratio(ours: float | None, baseline: float | None) -> float | None:
    """ours / baseline, or None when either is missing or the baseline is zero."""
    if ours is None or baseline is None or baseline == 0:
        return None
    return ours / baseline


def repetitions(size: int, budget: int, low: int, high: int) -> int:
    """How many times to run a batch of ``size`` so about ``budget`` records pass, within [low, high]."""
    if size <= 0:
        raise ValueError(f"batch size {size!r} is not positive")
    return max(low, min(high, budget // size))
