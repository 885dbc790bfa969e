"""Stream lag: how long after the write a record reaches the invalidator."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# ApproximateCreationDateTime is epoch seconds in Lambda events, but some
# emulators (moto versions) give milliseconds; no real write is from 5138 AD.
_MS_THRESHOLD = 1e11


def creation_seconds(record: Mapping[str, Any]) -> float | None:
    """The record's ApproximateCreationDateTime in epoch seconds, if present."""
    dynamodb = record.get("dynamodb")
    return epoch_seconds(dynamodb.get("ApproximateCreationDateTime") if isinstance(dynamodb, dict) else None)


def epoch_seconds(raw: object) -> float | None:
    """Epoch seconds from a number of seconds or of milliseconds; None when not a finite number.

    JSON parsers accept ``Infinity``, ``NaN`` and integers too large for a
    float: none of them may reach a metric (EMF with ``Infinity`` is not JSON).
    """
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    try:
        seconds = raw / 1000.0 if raw > _MS_THRESHOLD else float(raw)
    except OverflowError:  # an int beyond float's range
        return None
    return seconds if math.isfinite(seconds) else None


def lags_ms(records: Iterable[Mapping[str, Any]], now: float) -> list[float]:
    """Per record: now minus creation time, in milliseconds (never negative)."""
    created = (creation_seconds(r) for r in records)
    return [max(0.0, (now - c) * 1000.0) for c in created if c is not None]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
