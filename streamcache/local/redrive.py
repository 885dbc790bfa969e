"""Redrive: make the records an OnFailure destination names harmless, by invalidating their keys.

An OnFailure record carries only the batch's shard and sequence range, not
the records. Redrive re-reads that range from the stream (possible while it
is within the stream's 24-hour retention) and writes an invalidation ("X")
versioned with each record's sequence number for every key the range
touches, through the same ``apply.lua`` as the invalidator: a key already
holding a newer version is left alone, an older (possibly stale) one becomes
a miss and the next read fills it from DynamoDB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamcache.batch import plan_batch
from streamcache.local.destination import FailureMessage
from streamcache.local.stream import StreamSource, lambda_record
from streamcache.protocol import APPLIED, INVALIDATED, SKIPPED, Scripts, apply_commands
from streamcache.records import Command, invalidation_for, record_key
from streamcache.schema import KeySchemas

OpenStream = Callable[[str], StreamSource]

# Empty GetRecords pages tolerated before giving up on reaching the range's end.
_MAX_EMPTY_PAGES = 5


@dataclass
class RedriveReport:
    failures: int = 0  # OnFailure records handled
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
    return found


def invalidations(
    records: Sequence[dict[str, Any]], schemas: KeySchemas, prefix: str
) -> tuple[list[Command], list[str]]:
    """One "X" per key, versioned with the newest record for it; plus why some records had no key."""
    plan = plan_batch(records, lambda r: record_key(r, schemas, prefix), invalidation_for)
    problems = [f"record {plan.sequence_numbers[i]}: {why}" for i, why in plan.unusable]
    return list(plan.commands.values()), problems


def redrive(
    failures: Sequence[FailureMessage],
    open_stream: OpenStream,
    client: Any,
    schemas: KeySchemas,
    *,
    prefix: str = "",
    ttl_seconds: int = 3600,
    apply_options: Mapping[str, int] | None = None,
) -> RedriveReport:
    """Invalidate every key the failures' ranges touch; ``apply_options`` as ``Settings.apply_options``."""
    report = RedriveReport()
    script = Scripts.register(client).apply
    for failure in failures:
        info = failure.payload["DDBStreamBatchInfo"]
        label = f"{info['shardId']} {info['startSequenceNumber']}..{info['endSequenceNumber']}"
        try:
            source = open_stream(info["streamArn"])
            records = records_in_range(
                source, info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]
            )
        except Exception as err:  # trimmed, stream gone, endpoint down: say so, keep going
            report.errors.append(f"{label}: cannot re-read the range ({type(err).__name__}: {err})")
            continue
        commands, problems = invalidations(records, schemas, prefix)
        report.errors.extend(problems)
        outcomes = apply_commands(client, script, commands, ttl_seconds, **(apply_options or {}))
        _count(report, commands, outcomes)
        report.failures += 1
        report.records += len(records)
        if not problems and not any(isinstance(o, Exception) for o in outcomes):
            failure.ack()
    return report


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


def redrive_command(source: str, endpoint_url: str | None, say: Callable[[str], None] = print) -> int:
    """``python -m streamcache redrive SOURCE``: settings from the environment, as the invalidator's."""
    from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
    from streamcache.local.destination import read_failures
    from streamcache.local.stream import DynamoDBStream, streams_client
    from streamcache.schema import describe_with_boto3
    from streamcache.settings import Settings

    settings = Settings.from_env()
    failures = read_failures(source, endpoint_url)
    say(f"{len(failures)} OnFailure record(s) in {source}")
    schemas = KeySchemas(settings.key_schema, describe_with_boto3(endpoint_url))
    client = streams_client(endpoint_url)
    cache = redis_client(settings, INVALIDATOR_TIMEOUTS)
    report = redrive(
        failures,
        lambda arn: DynamoDBStream(arn, client),
        cache,
        schemas,
        prefix=settings.key_prefix,
        ttl_seconds=settings.cache_ttl_seconds,
        apply_options=settings.apply_options,
    )
    say(
        f"re-read {report.records} record(s) from {report.failures} range(s): "
        f"{report.invalidated} key(s) invalidated, {report.already_newer} already newer"
    )
    for problem in report.errors:
        say(f"  problem: {problem}")
    return 0 if report.ok else 1
