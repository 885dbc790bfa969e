"""Lambda entry point: ``redriver.handler.handler``, the consumer of the invalidator's failure queue.

Thin adapter over ``streamcache.redrive``: each SQS message body is a Lambda
OnFailure record for a DynamoDB stream batch (shard and sequence range, not
the records). For each message: re-read that range from the stream,
invalidate every key in it (versioned, so a newer entry is left alone), and
answer ``batchItemFailures`` for the messages it could not finish, so SQS
keeps them for another try (the SQS mapping needs ReportBatchItemFailures).
A range older than the stream's 24-hour retention cannot be re-read: its
message stays until the queue's own retention or redrive policy ends it.

Where it runs: in the VPC (ElastiCache is reachable only there), with a
route to the Streams API - a NAT, or the DynamoDB Streams interface endpoint
named in ``DYNAMODB_STREAMS_ENDPOINT_URL``. SQS needs no route: Lambda's SQS
poller receives and deletes the messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.logs import powertools_logger
from streamcache.redrive import (
    FailureMessage,
    FailureRecordError,
    OpenStream,
    RedriveReport,
    Target,
    parse_failure,
    redrive_one,
)
from streamcache.schema import KeySchemas, describe_with_boto3
from streamcache.settings import Settings
from streamcache.streams import DynamoDBStream, streams_client

logger = powertools_logger("streamcache-redriver")


@dataclass(frozen=True)
class Redriver:
    target: Target
    open_stream: OpenStream


_redriver: Redriver | None = None


# The Streams API endpoint. In a VPC without a NAT: the DynamoDB Streams interface endpoint's own DNS
# name (https://vpce-....streams.dynamodb.REGION.vpce.amazonaws.com) - that endpoint has no private DNS.
STREAMS_ENDPOINT_URL = "DYNAMODB_STREAMS_ENDPOINT_URL"


def build(settings: Settings, streams_endpoint: str | None = None) -> Redriver:
    endpoint = settings.dynamodb_endpoint_url
    schemas = KeySchemas(settings.key_schema, describe_with_boto3(endpoint))
    target = Target(
        redis_client(settings, INVALIDATOR_TIMEOUTS),
        schemas,
        settings.key_prefix,
        settings.cache_ttl_seconds,
        settings.apply_options,
    )
    client = streams_client(streams_endpoint or endpoint)
    return Redriver(target, lambda arn: DynamoDBStream(arn, client))


def runtime() -> Redriver:
    """The execution environment's redriver: settings read and clients made once."""
    global _redriver
    if _redriver is None:
        _redriver = build(Settings.from_env(), os.environ.get(STREAMS_ENDPOINT_URL) or None)
    return _redriver


def reset() -> None:
    """Forget the runtime (tests, or after changing the environment)."""
    global _redriver
    _redriver = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    redriver = runtime()
    report = RedriveReport()
    unfinished = [
        m["messageId"] for m in event.get("Records", []) if not _redrive_message(m, redriver, report)
    ]
    summary = {"messages": report.failures, "records": report.records, "invalidated": report.invalidated,
               "already_newer": report.already_newer, "kept": len(unfinished)}  # fmt: skip
    if unfinished:
        logger.warning("some failure messages kept", extra={**summary, "problems": report.errors[:10]})
    else:
        logger.info("failure messages redriven", extra=summary)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in unfinished]}


def _redrive_message(message: dict[str, Any], redriver: Redriver, report: RedriveReport) -> bool:
    where = f"message {message.get('messageId')}"
    try:
        payload = parse_failure(message.get("body", ""), where)
    except FailureRecordError as err:
        report.failures += 1
        report.errors.append(str(err))
        return False
    # The ack is SQS's: a message not reported in batchItemFailures is deleted by Lambda.
    return redrive_one(
        FailureMessage(payload, lambda: None, where), redriver.open_stream, redriver.target, report
    )
