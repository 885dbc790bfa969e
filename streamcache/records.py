"""Stream record -> cache command. Pure: no Redis, no clock, no AWS.

What each record does to its key (docs/invalidator.md):
- INSERT/MODIFY with NewImage: the key serves the new image ("I").
- INSERT/MODIFY without NewImage (KEYS_ONLY, OLD_IMAGE): the key is invalidated ("X").
- REMOVE (a delete or a TTL expiry): a versioned "not found" tombstone ("T").
- A record that names a key but cannot be applied (image too large or
  malformed, unknown event name): the key is invalidated ("X"), never left stale.
- A record with no usable key raises ``RecordError``; the batch reports it.

Every command carries its record's creation time (epoch ms, 0 when unknown):
apply.lua lets a record written after a reader's fill end the key's fill mode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streamcache import entry, lag
from streamcache.errors import KeyValueError, MalformedEventError, RecordError, UnknownTableError
from streamcache.keys import cache_key, table_from_arn
from streamcache.schema import KeySchemas

# DynamoDB items are at most 400 KB; their typed JSON is somewhat larger.
MAX_PAYLOAD_BYTES = 1024 * 1024

TTL_PRINCIPAL = "dynamodb.amazonaws.com"

# apply.lua reads creation times as 13-digit epoch ms (exact in a Lua double).
_MAX_CREATED_MS = 10**entry.STAMP_DIGITS - 1


@dataclass(frozen=True, slots=True)
class Command:
    """One conditional write of ``apply.lua`` for one key."""

    key: str
    kind: bytes  # entry.ITEM, entry.TOMBSTONE or entry.INVALIDATED
    version: str  # 40-digit padded SequenceNumber
    payload: bytes
    reason: str  # why this kind: image, remove, ttl, keys-only, or a fail-safe cause
    created_ms: int = 0  # the record's ApproximateCreationDateTime in epoch ms; 0: unknown


def sequence_number(record: object) -> str:
    """The record's SequenceNumber; a record without one makes the event malformed."""
    dynamodb = record.get("dynamodb") if isinstance(record, dict) else None
    seq = dynamodb.get("SequenceNumber") if isinstance(dynamodb, dict) else None
    if not isinstance(seq, str) or not seq:
        raise MalformedEventError("a stream record has no dynamodb.SequenceNumber")
    return seq


def record_key(record: Mapping[str, Any], schemas: KeySchemas, prefix: str) -> str:
    """The cache key a record names; ``RecordError`` when it names none usable."""
    table = table_from_arn(record.get("eventSourceARN"))
    keys = record["dynamodb"].get("Keys")
    if not isinstance(keys, dict) or not keys:
        raise RecordError(f"record has no dynamodb.Keys map (table {table!r})")
    try:
        return cache_key(table, keys, schemas.names_for_record(table, keys.keys()), prefix)
    except (KeyValueError, UnknownTableError) as err:  # a KEY_SCHEMA mismatch included
        raise RecordError(f"table {table!r}: {err}") from err


def invalidation_for(record: Mapping[str, Any], key: str, reason: str = "redrive") -> Command:
    """An "X" for ``key`` at the record's version, whatever the record says (redrive)."""
    version = entry.pad_version(record["dynamodb"]["SequenceNumber"])
    return Command(key, entry.INVALIDATED, version, b"", reason, created_ms(record))


def to_command(record: Mapping[str, Any], schemas: KeySchemas, prefix: str) -> Command:
    """Translate one (already validated) stream record into its cache command."""
    return command_for(record, record_key(record, schemas, prefix))


def created_ms(record: Mapping[str, Any]) -> int:
    """The record's creation time in whole epoch ms, rounded down (never later than the write); 0: unknown."""
    seconds = lag.creation_seconds(record)
    if seconds is None or not math.isfinite(seconds):
        return 0
    ms = math.floor(seconds * 1000)
    return ms if 0 < ms <= _MAX_CREATED_MS else 0


def command_for(record: Mapping[str, Any], key: str) -> Command:
    """The cache command of a record whose key is already known."""
    version = entry.pad_version(record["dynamodb"]["SequenceNumber"])
    kind, payload, reason = _effect(record)
    return Command(key, kind, version, payload, reason, created_ms(record))


Effect = tuple[bytes, bytes, str]  # Command's kind, payload, reason


def _effect(record: Mapping[str, Any]) -> Effect:
    event = record.get("eventName")
    if event == "REMOVE":
        return entry.TOMBSTONE, b"", _remove_reason(record)
    if event not in ("INSERT", "MODIFY"):
        return entry.INVALIDATED, b"", "unknown-event"
    image = record["dynamodb"].get("NewImage")
    if image is None:
        return entry.INVALIDATED, b"", "keys-only"
    return _image_effect(image)


def _image_effect(image: object) -> Effect:
    if not isinstance(image, dict) or not image:
        return entry.INVALIDATED, b"", "malformed-image"
    try:
        payload = entry.encode_item(image)
    except (TypeError, orjson.JSONEncodeError):
        return entry.INVALIDATED, b"", "malformed-image"
    if len(payload) > MAX_PAYLOAD_BYTES:
        return entry.INVALIDATED, b"", "too-large"
    return entry.ITEM, payload, "image"


def _remove_reason(record: Mapping[str, Any]) -> str:
    identity = record.get("userIdentity")
    if isinstance(identity, dict) and identity.get("principalId") == TTL_PRINCIPAL:
        return "ttl"
    return "remove"
