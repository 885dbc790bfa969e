"""Lambda entry point: ``invalidator.handler.handler`` (see docs/invalidator.md).

Thin adapter: build the runtime once per execution environment, hand the
event to ``Invalidator``, log and count the batch, return the batch response.
Metrics wait in the environment and are published through Powertools for
many invocations at once (``streamcache.metrics``: at most every
METRICS_FLUSH_SECONDS, at once when a record failed).
boto3 is never imported here (only if a table is missing from KEY_SCHEMA).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Metrics
from redis.exceptions import RedisClusterException

from invalidator.processor import BatchResult, Invalidator
from streamcache import aws
from streamcache import metrics as batch_metrics
from streamcache.batch import batch_response, records_of
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.layouts import Layouts, describe_table_with_boto3
from streamcache.logs import InfoLine, PendingLine, powertools_logger
from streamcache.records import sequence_number
from streamcache.schema import KeySchemas, describe_with_boto3
from streamcache.settings import Settings

logger = powertools_logger("streamcache-invalidator")
batch_applied = InfoLine(logger)  # the per-batch line, as logger.info writes it, for a fraction of the cost
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "streamcache"))


def _pending() -> batch_metrics.Pending:
    return batch_metrics.Pending(batch_metrics.flush_interval_s(os.environ, logger.warning))


pending = _pending()  # this environment's metric values, not published yet

_invalidator: Invalidator | None = None

# The batch's one INFO line: these counts (no keys, no item contents).
_SUMMARY = (
    "records",
    "applied",
    "skipped_older",
    "invalidated",
    "failed",
    "deduplicated",
    "key_schema_mismatch",
    "markers",
)


def build(settings: Settings) -> Invalidator:
    client = redis_client(settings, INVALIDATOR_TIMEOUTS)
    endpoint = settings.dynamodb_endpoint_url
    schemas = KeySchemas(settings.key_schema, describe_with_boto3(endpoint))
    layouts = None
    if settings.query_cache_tables:
        layouts = Layouts(settings.query_cache_tables, describe_table_with_boto3(endpoint))
    return Invalidator(settings, client, schemas, layouts=layouts)


def runtime() -> Invalidator:
    """The execution environment's invalidator: settings read and client made once."""
    global _invalidator
    if _invalidator is None:
        _invalidator = build(Settings.from_env())
    return _invalidator


def reset() -> None:
    """Forget the runtime and unpublished metrics (tests, or after changing the environment)."""
    global _invalidator, pending
    _invalidator = None
    pending = _pending()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        invalidator = runtime()
    except RedisClusterException as err:
        return _unreachable_at_init(event, err)
    line = batch_applied.pending("batch applied")  # prepared while a one-record batch's write is out
    with aws.invocation(context):  # DescribeTable never runs past the function's timeout
        result = invalidator.process(event, meanwhile=line.prepare)
    _publish(result, line)
    return result.response


def _unreachable_at_init(event: object, err: RedisClusterException) -> dict[str, Any]:
    """No cluster node answered while building the client: report every record, build again next time.

    The same outcome as a single node that is down (whose client connects
    lazily): nothing applied, nothing lost, Lambda re-delivers the batch.
    """
    sequence_numbers = [sequence_number(r) for r in records_of(event)]
    _count({"records": len(sequence_numbers), "failed": len(sequence_numbers)}, None)
    logger.warning(
        "Redis cluster unreachable: batch reported",
        extra={"redis_error": type(err).__name__, "reported": len(sequence_numbers)},
    )
    return batch_response(sequence_numbers, 0 if sequence_numbers else None)


def _count(counts: dict[str, int], lag: batch_metrics.Lag | None) -> None:
    """Add the invocation's values; publish what is pending when due (failures at once: they are alarmed)."""
    pending.add(counts, lag)
    if pending.due(urgent=counts["failed"] > 0):
        batch_metrics.publish(metrics, pending.take())


def _publish(result: BatchResult, line: PendingLine) -> None:
    """The invocation's metric values and its one log line (``line`` when every record applied)."""
    _count(result.counts, result.lag)
    for seq, why in result.unusable:
        logger.warning("record has no usable cache key", sequence_number=seq, reason=why)
    summary: dict[str, object] = {k: result.counts[k] for k in _SUMMARY}
    if result.first_failed is None:
        line(summary)
    else:
        summary.update(
            resume_at=result.first_failed,
            reported=len(result.response["batchItemFailures"]),
            redis_error=result.redis_error,
        )
        logger.warning("batch partially applied", extra=summary)
