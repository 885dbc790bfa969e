"""Logs and metrics of reads (Powertools Logger and Metrics, EMF).

Metrics (namespace POWERTOOLS_METRICS_NAMESPACE, default "streamcache"):
CacheHit, CacheMiss, FillRejected, RedisError (counts) and LookupLatencyMs
(one value per lookup); RequestRejected (4xx answers) and RequestFailed (5xx).

They are aggregated in the execution environment and published through
Powertools together: once every METRICS_FLUSH_SECONDS (default 60; 0 =
every invocation), and sooner when 100 latencies are waiting (EMF's limit of
values per metric). Measured: Powertools' ``add_metric`` plus a flush costs
~90 us, twice a cache hit itself; aggregated, a hit pays a list append and
the flush is spread over up to 100 reads. The price: counts of reads since
the last flush are lost if the environment is shut down first (at most 100
reads or one interval).

Logs name the table, the source and what happened to the fill; never the
item's contents, and never the key values at INFO (they may be personal data).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from streamcache.read.cacheaside import CACHE, Counters, Result

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "streamcache-reader")
METRICS_FLUSH_SECONDS = "METRICS_FLUSH_SECONDS"
MAX_VALUES = 100  # EMF: at most 100 values of one metric per document

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "streamcache"), service=SERVICE)

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
    latencies_ms: list[float] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    flushed_at: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.flushed_at = self.clock()

    def due(self) -> bool:
        return len(self.latencies_ms) >= MAX_VALUES or self.clock() - self.flushed_at >= self.interval_s


def _interval() -> float:
    raw = os.environ.get(METRICS_FLUSH_SECONDS, "").strip()
    try:
        return float(raw) if raw else 60.0
    except ValueError:
        logger.warning("%s=%r is not a number of seconds; flushing every 60 s", METRICS_FLUSH_SECONDS, raw)
        return 60.0


pending = Pending(_interval())


def record(table: str, result: Result, started: float) -> None:
    """One lookup: its latency waits for the flush (counts are in the cache's ``Counters``)."""
    pending.latencies_ms.append(round((time.perf_counter() - started) * 1000.0, 3))
    if result.source != CACHE:
        _log_miss(table, result)
    elif logger.log_level <= logging.DEBUG:  # asked first: a filtered Powertools call still costs ~2 us
        logger.debug("read", table=table, source=CACHE, found=result.item is not None)


def record_batch(table: str, results: list[Result], started: float) -> None:
    """A batch: one latency for the whole lookup, one log line if any key missed."""
    pending.latencies_ms.append(round((time.perf_counter() - started) * 1000.0, 3))
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


def refused(status: int) -> None:
    """An error answer: 4xx is the caller's mistake, 5xx ours (logged where it happens)."""
    name = "RequestFailed" if status >= 500 else "RequestRejected"
    pending.refused[name] = pending.refused.get(name, 0) + 1


def flush_if_due(counters: Counters | None) -> None:
    """Publish when the interval has passed or 100 latencies wait (end of an invocation)."""
    if pending.due():
        flush(counters)


def flush(counters: Counters | None) -> None:
    """Publish everything pending through Powertools (one EMF document) and start again."""
    counts = counters.take() if counters is not None else {}
    for field_name, metric in COUNT_METRICS.items():
        if counts.get(field_name):
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=counts[field_name])
    for name, value in pending.refused.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for latency in pending.latencies_ms[:MAX_VALUES]:
        metrics.add_metric(name="LookupLatencyMs", unit=MetricUnit.Milliseconds, value=latency)
    del pending.latencies_ms[:MAX_VALUES]
    pending.refused.clear()
    pending.flushed_at = pending.clock()
    if metrics.metric_set:
        metrics.flush_metrics()
