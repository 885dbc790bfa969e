"""A batch of stream records -> one deduplicated plan, and back to a batch response.

Pure. Lambda resumes a shard at the lowest sequence number a partial batch
response reports, so the response lists the first record not applied and
every record after it: the checkpoint never skips a record. Records after a
failure are still applied when they can be (writes are versioned, so their
re-delivery is harmless) - that keeps the cache fresh while a poison record
is retried and bisected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamcache.entry import pad_version
from streamcache.errors import KeySchemaMismatchError, MalformedEventError, RecordError
from streamcache.records import Command, sequence_number

KeyOf = Callable[[dict[str, Any]], str]  # raises RecordError when the record names no usable key
Build = Callable[[dict[str, Any], str], Command]


@dataclass
class Plan:
    sequence_numbers: list[str]
    record_keys: list[str | None]  # per record; None = no usable key
    commands: dict[str, Command] = field(default_factory=dict)  # newest record per key
    unusable: list[tuple[int, str]] = field(default_factory=list)  # (record index, why)
    key_schema_mismatches: int = 0  # unusable because KEY_SCHEMA disagrees with the record's Keys


def records_of(event: object) -> list[dict[str, Any]]:
    """Validate the event's shape; a malformed event fails the whole invocation."""
    if not isinstance(event, dict):
        raise MalformedEventError(f"event is a {type(event).__name__}, not a DynamoDB Streams event")
    records = event.get("Records")
    if not isinstance(records, list):
        raise MalformedEventError("event has no Records list: not a DynamoDB Streams event")
    for record in records:
        sequence_number(record)
    return records


def plan_batch(records: Sequence[dict[str, Any]], key_of: KeyOf, build: Build) -> Plan:
    """Find every record's key; build a command only for the newest record per key.

    ``records`` are valid stream records (``records_of`` checked their
    SequenceNumbers; the stream reader's always have one). Building encodes the
    image, the costliest step: a batch that touches a key many times encodes it
    once (a 10,000-record batch over 1,000 keys: 1,000).
    """
    plan = Plan([r["dynamodb"]["SequenceNumber"] for r in records], [])
    newest: dict[str, tuple[str, int]] = {}  # key -> (version, record index)
    for index, record in enumerate(records):
        try:
            key = key_of(record)
        except RecordError as err:
            plan.record_keys.append(None)
            plan.unusable.append((index, str(err)))
            plan.key_schema_mismatches += isinstance(err.__cause__, KeySchemaMismatchError)
            continue
        plan.record_keys.append(key)
        version = pad_version(plan.sequence_numbers[index])
        if key not in newest or version >= newest[key][0]:
            newest[key] = (version, index)
    plan.commands = {key: build(records[index], key) for key, (_, index) in newest.items()}
    return plan


def first_unapplied(
    plan: Plan, failed_keys: set[str], more_keys: Sequence[Sequence[str] | None] = ()
) -> int | None:
    """Index of the first record that has no key or whose key's command failed.

    ``more_keys[i]``: other keys record i writes (query-cache partition
    markers), None when they could not be known; the record counts as
    applied only when they were written too.
    """
    check_more = bool(more_keys)
    for index, key in enumerate(plan.record_keys):
        if key is None or key in failed_keys:
            return index
        if check_more:
            extra = more_keys[index]
            if extra is None or (failed_keys and not failed_keys.isdisjoint(extra)):
                return index
    return None


def batch_response(sequence_numbers: Sequence[str], first_failed: int | None) -> dict[str, Any]:
    """ReportBatchItemFailures response: the first unapplied record and all after it."""
    failed = [] if first_failed is None else sequence_numbers[first_failed:]
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}
