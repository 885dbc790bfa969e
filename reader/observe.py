"""Logs and metrics of a read (Powertools Logger and Metrics, EMF).

Metrics (namespace POWERTOOLS_METRICS_NAMESPACE, default "streamcache"):
CacheHit, CacheMiss, FillRejected, RedisError (counts) and LookupLatencyMs per
lookup; RequestRejected (4xx answers) and RequestFailed (5xx answers) otherwise;
KeySchemaMismatch when KEY_SCHEMA disagrees with a table's real key schema.
Logs name the table, the source and what happened to the fill; never the
item's contents, and never the key values at INFO (they may be personal data).
"""

from __future__ import annotations

import os
import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reader.cacheaside import CACHE, Result

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "streamcache-reader")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "streamcache"), service=SERVICE)


def record(table: str, result: Result, started: float) -> None:
    """Publish one lookup: a hit is one counter and a latency; a miss says why."""
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    hit = result.source == CACHE
    metrics.add_metric(name="CacheHit" if hit else "CacheMiss", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="LookupLatencyMs", unit=MetricUnit.Milliseconds, value=round(elapsed_ms, 3))
    if result.fill_rejected:
        metrics.add_metric(name="FillRejected", unit=MetricUnit.Count, value=1)
    if result.redis_errors:
        metrics.add_metric(name="RedisError", unit=MetricUnit.Count, value=result.redis_errors)
    if hit:
        logger.debug("read", table=table, source=CACHE, found=result.item is not None)
        return
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

    The 503 it answers is logged at ERROR where it is answered, with the message naming both schemas.
    """
    metrics.add_metric(name="KeySchemaMismatch", unit=MetricUnit.Count, value=1)


def refused(status: int) -> None:
    """An error answer: 4xx is the caller's mistake, 5xx ours (logged where it happens)."""
    name = "RequestFailed" if status >= 500 else "RequestRejected"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
