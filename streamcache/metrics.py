"""The invalidator's metrics: one value per metric per invocation, published for many invocations at once.

Pure, except ``publish``. Nothing here runs per record on the hot path except
reading each record's creation time: the stream lag is summarised from the
distinct creation times (DynamoDB stamps them to the second, so a batch of
10,000 records has a handful), not from one float per record.

``Pending`` keeps each invocation's values (its counts, its lag) in the
execution environment; ``take`` hands them to Powertools in the shape its
own ``add_metric`` stores (name -> unit, resolution, list of values), and
one ``flush_metrics`` writes them as one EMF document. CloudWatch computes
Sum, Average and percentiles over the values exactly as if each invocation
had published its own line. Published when ``METRICS_FLUSH_SECONDS`` (default
60) have passed since the last flush, after 100 invocations (EMF's limit of
values per metric), and at once when a record failed (the stack alarms on
``RecordsFailed``). Why: a flush and its line cost ~50 us, more than the
Python of a one-record batch; eight ``add_metric`` calls (each re-validating
its unit and formatting a debug message) cost more than its Redis round trip.
The price: values wait for a later invocation of the same environment (a new
environment's first invocation, and the first after a quiet interval, publish
at once), and are lost if Lambda shuts the environment down first: at most
one interval's, or 99 invocations'.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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
METRICS_FLUSH_SECONDS = "METRICS_FLUSH_SECONDS"
DEFAULT_FLUSH_SECONDS = 60.0
MAX_VALUES = 100  # per metric in one EMF document


class Lag(NamedTuple):  # a tuple: built per batch, and a frozen dataclass costs a microsecond more
    """Stream lag over one batch: median and worst, in milliseconds (never negative)."""

    p50_ms: float
    max_ms: float


def creation_times(records: Iterable[Mapping[str, Any]]) -> dict[float, int]:
    """How many records carry each ApproximateCreationDateTime (epoch seconds); those without one: none."""
    times: dict[float, int] = {}
    for record in records:
        created = creation_seconds(record)
        if created is not None:
            times[created] = times.get(created, 0) + 1
    return times


def lag(times: Mapping[float, int], now: float) -> Lag | None:
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


@dataclass
class Pending:
    """Invocations' metric values not published yet (see the module's docstring)."""

    interval_s: float
    clock: Callable[[], float] = time.monotonic
    # Per invocation, its counts (kept as given, never changed after) and its lag: an append per
    # invocation, turned into one list of values per metric once per flush (``take``).
    batches: list[tuple[Mapping[str, int], Lag | None]] = field(default_factory=list)
    flushed_at: float = float("-inf")  # a new environment's first invocation publishes at once

    def add(self, counts: Mapping[str, int], batch_lag: Lag | None) -> None:
        """One invocation: every count (zeros too, so averages are per invocation), its lag if known."""
        self.batches.append((counts, batch_lag))

    def due(self, urgent: bool = False) -> bool:
        """Whether to flush at the end of this invocation."""
        if not self.batches:
            return False
        return urgent or len(self.batches) >= MAX_VALUES or self.clock() - self.flushed_at >= self.interval_s

    def take(self) -> dict[str, dict[str, Any]]:
        """Everything pending, as Powertools' metric set; pending starts again empty."""
        batches, self.batches = self.batches, []
        self.flushed_at = self.clock()
        values: dict[str, list[float]] = {}
        if batches:
            for key, name in COUNT_METRICS.items():
                values[name] = [float(counts.get(key, 0)) for counts, _ in batches]
        lags = [batch_lag for _, batch_lag in batches if batch_lag is not None]
        if lags:
            values[LAG_P50] = [batch_lag.p50_ms for batch_lag in lags]
            values[LAG_MAX] = [batch_lag.max_ms for batch_lag in lags]
        return {
            name: {
                "Unit": MILLISECONDS if name in (LAG_P50, LAG_MAX) else COUNT,
                "StorageResolution": STANDARD_RESOLUTION,
                "Value": series,
            }
            for name, series in values.items()
        }


def flush_interval_s(environ: Mapping[str, str], warn: Callable[[str], None]) -> float:
    """``METRICS_FLUSH_SECONDS`` (0: every invocation); not a number of seconds: 60, and a warning."""
    raw = environ.get(METRICS_FLUSH_SECONDS, "").strip()
    try:
        interval = float(raw) if raw else DEFAULT_FLUSH_SECONDS
    except ValueError:
        interval = -1.0
    if not 0.0 <= interval < float("inf"):
        warn(f"{METRICS_FLUSH_SECONDS}={raw!r} is not a number of seconds; flushing every 60 s")
        return DEFAULT_FLUSH_SECONDS
    return interval


def publish(metrics: Any, metric_set: Mapping[str, dict[str, Any]]) -> None:
    """Hand ``metric_set`` to a Powertools ``Metrics``, then write it (one EMF document)."""
    metrics.metric_set.update(metric_set)
    metrics.flush_metrics()
