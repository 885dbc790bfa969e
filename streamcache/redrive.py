"""Redrive: make the records an OnFailure destination names harmless, by invalidating their keys.

An OnFailure record carries only the batch's shard and sequence range, not
the records. Redrive re-reads that range from the stream (possible while it
is within the stream's 24-hour retention) and writes an invalidation ("X")
versioned with each record's sequence number for every key the range
touches, through the same ``apply.lua`` as the invalidator: a key already
holding a newer version is left alone, an older (possibly stale) one becomes
a miss and the next read fills it from DynamoDB.

A failure message is acknowledged (deleted from its queue) right after its
keys are invalidated, and only then: it is the only record of which keys to
invalidate. Used by the ``redriver`` Lambda and by ``python -m streamcache redrive``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamcache.batch import plan_batch
from streamcache.errors import StreamCacheError
from streamcache.protocol import APPLIED, INVALIDATED, SKIPPED, Scripts, apply_commands
from streamcache.records import Command, invalidation_for, record_key
from streamcache.schema import KeySchemas
from streamcache.settings import ApplyOptions
from streamcache.streams import StreamSource, lambda_record

OpenStream = Callable[[str], StreamSource]

# Empty GetRecords pages tolerated before giving up on reaching the range's end.
_MAX_EMPTY_PAGES = 5

_BATCH_INFO_FIELDS = ("shardId", "startSequenceNumber", "endSequenceNumber", "streamArn")


class FailureRecordError(StreamCacheError):
    """A message that is not a DynamoDB stream OnFailure record (or not JSON at all)."""


@dataclass
class FailureMessage:
    payload: dict[str, Any]
    ack: Callable[[], None]  # called once the failure has been redriven
    where: str = ""  # a file line or an SQS message id, for the report


def parse_failure(text: str, where: str) -> dict[str, Any]:
    """An OnFailure record's JSON, checked for the ``DDBStreamBatchInfo`` redrive needs.

    An SNS destination's record reaches a subscribed queue wrapped in SNS's
    notification (``{"Type": "Notification", "Message": "<the record>"}``)
    unless raw message delivery is on: either form is accepted.
    """
    try:
        payload = json.loads(text)
        if isinstance(payload, dict) and payload.get("Type") == "Notification":
            payload = json.loads(payload.get("Message", ""))
    except (TypeError, ValueError):
        raise FailureRecordError(f"{where}: not JSON") from None
    info = payload.get("DDBStreamBatchInfo") if isinstance(payload, dict) else None
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in _BATCH_INFO_FIELDS):
        raise FailureRecordError(f"{where}: not a DynamoDB stream OnFailure record (no DDBStreamBatchInfo)")
    return payload


@dataclass
class RedriveReport:
    failures: int = 0  # OnFailure records handled
    acknowledged: int = 0  # ... and deleted from their queue (every key invalidated)
    kept: list[str] = field(default_factory=list)  # ... and left in place, one reason each
    records: int = 0  # stream records re-read
    keys: list[str] = field(default_factory=list)
    invalidated: int = 0
    already_newer: int = 0  # the key holds a newer version: nothing to do
    errors: list[str] = field(default_factory=list)  # unreadable ranges, unusable records, Redis errors

    @property
    def ok(self) -> bool:
        return not self.errors


def records_in_range(source: StreamSource, shard_id: str, start: str, end: str) -> list[dict[str, Any]]:
    """The records of ``shard_id`` from ``start`` to ``end`` (inclusive), as Lambda would deliver them."""
    iterator: str | None = source.iterator(shard_id, "AT_SEQUENCE_NUMBER", start)
    found: list[dict[str, Any]] = []
    empty = 0
    while iterator is not None and empty < _MAX_EMPTY_PAGES:
        page = source.read(iterator, 1000)
        iterator = page.next_iterator
        empty = 0 if page.records else empty + 1
        for raw in page.records:
            if int(raw["dynamodb"]["SequenceNumber"]) > int(end):
                return found
            found.append(lambda_record(raw, source.arn))
            if int(raw["dynamodb"]["SequenceNumber"]) == int(end):
                return found
    return found


def invalidations(
    records: Sequence[dict[str, Any]], schemas: KeySchemas, prefix: str
) -> tuple[list[Command], list[str]]:
    """One "X" per key, versioned with the newest record for it; plus why some records had no key."""
    plan = plan_batch(records, lambda r: record_key(r, schemas, prefix), invalidation_for)
    problems = [f"record {plan.sequence_numbers[i]}: {why}" for i, why in plan.unusable]
    return list(plan.commands.values()), problems


@dataclass(frozen=True)
class Target:
    """Where redrive writes: the Redis client and the invalidator's settings for it."""

    client: Any
    schemas: KeySchemas
    prefix: str = ""
    ttl_seconds: int = 3600
    apply_options: ApplyOptions = field(default_factory=ApplyOptions)  # ``Settings.apply_options``


def redrive(
    failures: Iterable[FailureMessage],
    open_stream: OpenStream,
    client: Any,
    schemas: KeySchemas,
    *,
    prefix: str = "",
    ttl_seconds: int = 3600,
    apply_options: ApplyOptions | None = None,
) -> RedriveReport:
    """Invalidate every key the failures' ranges touch, acknowledging each failure as soon as it is done."""
    target = Target(client, schemas, prefix, ttl_seconds, apply_options or ApplyOptions())
    report = RedriveReport()
    for failure in failures:
        redrive_one(failure, open_stream, target, report)
    return report


def redrive_one(
    failure: FailureMessage, open_stream: OpenStream, target: Target, report: RedriveReport
) -> bool:
    """One failure: re-read its range, invalidate its keys, then ack it; False (kept) if anything failed."""
    info = failure.payload["DDBStreamBatchInfo"]
    label = f"{info['shardId']} {info['startSequenceNumber']}..{info['endSequenceNumber']}"
    report.failures += 1
    errors_before = len(report.errors)
    try:
        source = open_stream(info["streamArn"])
        records = records_in_range(
            source, info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]
        )
    except Exception as err:  # trimmed, stream gone, endpoint down: say so, keep going
        report.errors.append(f"{label}: cannot re-read the range ({type(err).__name__}: {err})")
    else:
        commands, problems = invalidations(records, target.schemas, target.prefix)
        report.errors.extend(problems)
        script = Scripts.register(target.client).apply
        outcomes = apply_commands(target.client, script, commands, target.ttl_seconds, **target.apply_options)
        _count(report, commands, outcomes)
        report.records += len(records)
    if len(report.errors) > errors_before:
        report.kept.append(f"{failure.where or label}: kept ({report.errors[-1]})")
        return False
    try:
        failure.ack()
    except (
        Exception
    ) as err:  # the keys are invalidated; the message will come back and redrive again, harmlessly
        report.errors.append(
            f"{failure.where or label}: invalidated but not deleted ({type(err).__name__}: {err})"
        )
        return False
    report.acknowledged += 1
    return True


def _count(report: RedriveReport, commands: Sequence[Command], outcomes: Sequence[object]) -> None:
    for command, outcome in zip(commands, outcomes, strict=True):
        report.keys.append(command.key)
        if isinstance(outcome, Exception):
            # Redis's own words (NOREPLICAS, OOM, connection refused) say why; they carry no item contents.
            report.errors.append(f"key {command.key}: {type(outcome).__name__}: {str(outcome)[:200]}")
        elif outcome == SKIPPED:
            report.already_newer += 1
        elif outcome in (APPLIED, INVALIDATED):
            report.invalidated += 1
