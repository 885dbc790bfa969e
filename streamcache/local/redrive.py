"""``python -m streamcache redrive SOURCE``: the redrive logic (``streamcache.redrive``) from a laptop.

SOURCE is an SQS queue URL or a JSON-lines file of OnFailure records. The
queue is read with the queue URL's own host as the SQS endpoint; the stream
is re-read at ``--endpoint-url`` (``DYNAMODB_ENDPOINT_URL``, else AWS).
"""

from __future__ import annotations

from collections.abc import Callable

from streamcache.local.destination import QueuePolling, read_failures

# Re-exported: the demo and the tests import the redrive logic from here.
from streamcache.redrive import (
    FailureMessage,
    RedriveReport,
    Target,
    invalidations,
    records_in_range,
    redrive,
    redrive_one,
)

__all__ = [
    "FailureMessage",
    "RedriveReport",
    "Target",
    "invalidations",
    "records_in_range",
    "redrive",
    "redrive_command",
    "redrive_one",
]


def redrive_command(
    source: str,
    endpoint_url: str | None,
    say: Callable[[str], None] = print,
    polling: QueuePolling | None = None,
) -> int:
    """Settings from the environment, as the invalidator's; exit 0 when every failure was redriven."""
    from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
    from streamcache.local.stream import DynamoDBStream, streams_client
    from streamcache.schema import KeySchemas, describe_with_boto3
    from streamcache.settings import Settings

    settings = Settings.from_env()
    schemas = KeySchemas(settings.key_schema, describe_with_boto3(endpoint_url))
    client = streams_client(endpoint_url)
    cache = redis_client(settings, INVALIDATOR_TIMEOUTS)
    report = redrive(
        read_failures(source, polling=polling),
        lambda arn: DynamoDBStream(arn, client),
        cache,
        schemas,
        prefix=settings.key_prefix,
        ttl_seconds=settings.cache_ttl_seconds,
        apply_options=settings.apply_options,
    )
    say(
        f"{report.failures} OnFailure record(s) in {source}: "
        f"{report.acknowledged} done, {len(report.kept)} kept"
    )
    say(
        f"re-read {report.records} record(s) from {report.failures} range(s): "
        f"{report.invalidated} key(s) invalidated, {report.already_newer} already newer"
    )
    for problem in report.errors:
        say(f"  problem: {problem}")
    for kept in report.kept:
        say(f"  {kept}")
    return 0 if report.ok else 1
