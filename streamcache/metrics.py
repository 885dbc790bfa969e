"""The invalidator's metrics for one invocation: summed while the batch is processed, handed over once.

Pure, except ``publish``. Nothing here runs per record on the hot path except
reading each record's creation time: the stream lag is summarised from the
distinct creation times (DynamoDB stamps them to the second, so a batch of
10,000 records has a handful), not from one float per record.

``publish`` gives Powertools the whole set at once, in the shape its own
``add_metric`` stores (name -> unit, resolution, values); the handler's
``log_metrics`` decorator serialises it as the invocation's one EMF line.
Eight ``add_metric`` calls (each re-validating its unit and formatting a
debug message) cost more than the Redis round trip of a one-record batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streamcache.lag import creation_seconds

# result.counts key -> metric name (all in Count)
COUNT_METRICS = {
    "applied": "RecordsApplied",
    "skipped_older": "RecordsSkippedOlder",
    "invalidated": "RecordsInvalidated",
    "failed": "RecordsFailed",
    "deduplicated": "RecordsDeduplicated",
    "key_schema_mismatch": "KeySchemaMismatch",
    "markers": "PartitionMarkersMoved",
    "records": "BatchSize",
}
LAG_P50, LAG_MAX = "StreamLagMs", "StreamLagMaxMs"
COUNT, MILLISECONDS = "Count", "Milliseconds"  # CloudWatch unit names (MetricUnit values)
STANDARD_RESOLUTION = 60


@dataclass(frozen=True, slots=True)
class Lag:
    """Stream lag over one batch: median and worst, in milliseconds (never negative)."""

    p50_ms: float
    max_ms: float


def creation_times(records: Iterable[Mapping[str, Any]]) -> Counter[float]:
    """How many records carry each ApproximateCreationDateTime (epoch seconds); those without one: none."""
    times: Counter[float] = Counter()
    for record in records:
        created = creation_seconds(record)
        if created is not None:
            times[created] += 1
    return times


def lag(times: Counter[float], now: float) -> Lag | None:
    """Nearest-rank median and maximum of ``now - created`` over every counted record; None for none."""
    total = sum(times.values())
    if total == 0:
        return None
    newest_first = sorted(times, reverse=True)  # smallest lag first
    rank, seen = (total + 1) // 2, 0  # nearest rank of the median: ceil(0.5 * total)
    for created in newest_first:
        seen += times[created]
        if seen >= rank:
            return Lag(_ms(now, created), _ms(now, newest_first[-1]))
    raise AssertionError("unreachable: the counts add up to total")


def _ms(now: float, created: float) -> float:
    return max(0.0, (now - created) * 1000.0)


def figures(counts: Mapping[str, int], batch_lag: Lag | None) -> dict[str, dict[str, Any]]:
    """The invocation's metric set, in the shape Powertools stores it (one value per metric)."""
    metric_set = {name: _entry(COUNT, counts.get(key, 0)) for key, name in COUNT_METRICS.items()}
    if batch_lag is not None:
        metric_set[LAG_P50] = _entry(MILLISECONDS, batch_lag.p50_ms)
        metric_set[LAG_MAX] = _entry(MILLISECONDS, batch_lag.max_ms)
    return metric_set


def _entry(unit: str, value: float) -> dict[str, Any]:
    return {"Unit": unit, "StorageResolution": STANDARD_RESOLUTION, "Value": [float(value)]}


def publish(metrics: Any, metric_set: Mapping[str, dict[str, Any]]) -> None:
    """Hand ``metric_set`` to a Powertools ``Metrics``: flushed (one EMF line) when the handler returns."""
    metrics.metric_set.update(metric_set)
