"""Logs and metrics of reads (Powertools Logger and Metrics, EMF).

Metrics (namespace POWERTOOLS_METRICS_NAMESPACE, default "streamcache"):
CacheHit, CacheMiss, FillRejected, RedisError (counts), the near cache's
NearCacheHit (of the CacheHits, those served from memory), NearCacheInvalidation,
NearCacheReset (emptied: lost or silent tracking connection) and
NearCacheConfirmWait (reads that waited one round trip for a confirmation), and LookupLatencyMs
(one value per lookup); RequestRejected (4xx answers) and RequestFailed (5xx);
KeySchemaMismatch when KEY_SCHEMA disagrees with a table's real key schema
(flushed at the end of that invocation: the stack alarms on it).

They are aggregated in the execution environment and published through
Powertools together, as one EMF document: once every METRICS_FLUSH_SECONDS
(default 60; 0 = every invocation), and sooner after 100 lookups.
LookupLatencyMs carries a uniform sample of at most 10 of those lookups'
latencies (reservoir sampling), which CloudWatch's percentiles aggregate.

Why: measured here, one ``add_metric`` pair plus a flush per read cost
~95 us, twice a cache hit itself; and Powertools formats a metric's whole
value list into a debug message on every ``add_metric``, so publishing 100
latencies costs O(100^2). Aggregated, a hit pays two appends, and a flush is
spread over up to 100 reads. The price: what was counted since the last
flush is lost if the environment is shut down first (at most 100 lookups,
or one interval).

Logs name the table, the source and what happened to the fill; never the
item's contents, and never the key values at INFO (they may be personal data).
"""

from __future__ import annotations

import logging
import os
import random
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from streamcache.logs import powertools_logger
from streamcache.metrics import flush_interval_s
from streamcache.read.cacheaside import CACHE, Counters, Result
from streamcache.read.near import NearCache

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "streamcache-reader")
FLUSH_AFTER = 100  # lookups
LATENCY_SAMPLES = 10  # latencies published per flush (a uniform sample of the lookups')

logger = powertools_logger("streamcache-reader")  # named SERVICE too
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "streamcache"), service=SERVICE)

# The near cache's counters -> published metric name.
NEAR_METRICS = {
    "hits": "NearCacheHit",
    "invalidations": "NearCacheInvalidation",
    "resets": "NearCacheReset",
    "round_trips": "NearCacheConfirmWait",
}

# Counters field -> published metric name.
COUNT_METRICS = {
    "hits": "CacheHit",
    "misses": "CacheMiss",
    "fills_rejected": "FillRejected",
    "redis_errors": "RedisError",
}


@dataclass
class Pending:
    """What this environment observed since the last flush."""

    interval_s: float
    clock: Callable[[], float] = time.monotonic
    lookups: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # metric name -> count (refusals, mismatches)
    urgent: bool = False  # flush at the end of this invocation (an alarm watches the metric)
    flushed_at: float = field(default=0.0)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.flushed_at = self.clock()

    def latency(self, started: float) -> None:
        """Keep a uniform sample of ``LATENCY_SAMPLES`` latencies (reservoir sampling)."""
        elapsed_ms = round((time.perf_counter() - started) * 1000.0, 3)
        self.lookups += 1
        if len(self.latencies_ms) < LATENCY_SAMPLES:
            self.latencies_ms.append(elapsed_ms)
            return
        slot = self.rng.randrange(self.lookups)
        if slot < LATENCY_SAMPLES:
            self.latencies_ms[slot] = elapsed_ms

    def due(self) -> bool:
        return self.urgent or self.lookups >= FLUSH_AFTER or self.clock() - self.flushed_at >= self.interval_s

    def clear(self) -> None:
        self.lookups = 0
        self.latencies_ms.clear()
        self.counts.clear()
        self.urgent = False
        self.flushed_at = self.clock()


pending = Pending(flush_interval_s(os.environ, logger.warning))


def record(table: str, result: Result, started: float) -> None:
    """One lookup: its latency waits for the flush (counts are in the cache's ``Counters``)."""
    pending.latency(started)
    if result.source != CACHE:
        _log_miss(table, result)
    elif logger.log_level <= logging.DEBUG:  # asked first: a filtered Powertools call still costs ~2 us
        logger.debug("read", table=table, source=CACHE, found=result.item is not None)


def record_batch(table: str, results: list[Result], started: float) -> None:
    """A batch: one latency for the whole lookup, one log line if any key missed."""
    pending.latency(started)
    missed = [r for r in results if r.source != CACHE]
    if missed:
        logger.info(
            "batch read",
            extra={
                "table": table,
                "keys": len(results),
                "from_dynamodb": len(missed),
                "filled": sum(r.filled for r in missed),
                "fill_rejected": sum(r.fill_rejected for r in missed),
                "redis_errors": sum(r.redis_errors > 0 for r in missed),
                "circuit_open": any(r.bypassed for r in missed),
            },
        )


def _log_miss(table: str, result: Result) -> None:
    logger.info(
        "read",
        extra={
            "table": table,
            "source": result.source,
            "found": result.item is not None,
            "filled": result.filled,
            "fill_rejected": result.fill_rejected,
            "redis_errors": result.redis_errors,
            "circuit_open": result.bypassed,
        },
    )


def key_schema_mismatch() -> None:
    """KEY_SCHEMA disagrees with the table: a configuration error the stack alarms on.

    The 503 it answers is logged at ERROR where it is answered, with the message naming both
    schemas; the metric is flushed at the end of this invocation, not after the interval.
    """
    _count("KeySchemaMismatch")
    pending.urgent = True


def refused(status: int) -> None:
    """An error answer: 4xx is the caller's mistake, 5xx ours (logged where it happens)."""
    _count("RequestFailed" if status >= 500 else "RequestRejected")


# Each near cache's counts at its last flush (a runtime rebuilt in tests brings a new one).
_near_published: weakref.WeakKeyDictionary[NearCache, dict[str, int]] = weakref.WeakKeyDictionary()


def _near_since_last_flush(near: NearCache | None) -> dict[str, int]:
    """What the near cache counted since the last flush, by metric name (nonzero only)."""
    if near is None:
        return {}
    published = _near_published.setdefault(near, {})
    changed = {}
    for field_name, metric in NEAR_METRICS.items():
        total = getattr(near.counters, field_name)
        delta = total - published.get(field_name, 0)
        published[field_name] = total
        if delta > 0:
            changed[metric] = delta
    return changed


def _count(name: str) -> None:
    pending.counts[name] = pending.counts.get(name, 0) + 1


def flush_if_due(counters: Counters | None, near: NearCache | None = None) -> None:
    """Publish when the interval has passed or 100 lookups wait (end of an invocation)."""
    if pending.due():
        flush(counters, near)


def flush(counters: Counters | None, near: NearCache | None = None) -> None:
    """Publish everything pending through Powertools (one EMF document) and start again."""
    counts = counters.take() if counters is not None else {}
    for field_name, metric in COUNT_METRICS.items():
        if counts.get(field_name):
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=counts[field_name])
    for metric, value in _near_since_last_flush(near).items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
    for name, value in pending.counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for latency in pending.latencies_ms:
        metrics.add_metric(name="LookupLatencyMs", unit=MetricUnit.Milliseconds, value=latency)
    pending.clear()
    if metrics.metric_set:
        metrics.flush_metrics()
