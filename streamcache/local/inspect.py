"""Human-readable view of what a cache key holds (replay, demo, tests)."""

from __future__ import annotations

from typing import Any

from streamcache import entry

_KIND_NAMES = {
    entry.ITEM: "item",
    entry.TOMBSTONE: "not found (tombstone)",
    entry.INVALIDATED: "invalidated",
    entry.LEASE: "lease",
    entry.FILL: "item (reader fill)",
}


def holding(client: Any, key: str) -> dict[str, Any]:
    """``{"key", "state", "version", "item", "ttl", "fill_ms"}`` for one key; state "absent" if none.

    ``fill_ms``: when the key is in fill mode (a reader fill, or an invalidation or
    lease descended from one), the fill's Redis time in epoch ms; else None.
    """
    raw = client.get(key)
    if raw is None:
        return {"key": key, "state": "absent", "version": None, "item": None, "ttl": None, "fill_ms": None}
    e = entry.decode(raw)
    state = _KIND_NAMES[e.kind]
    if e.kind == entry.FILL and not e.payload:
        state = "not found (reader fill)"
    return {
        "key": key,
        "state": state,
        "version": e.version.lstrip("0") or "0",
        "item": e.item(),
        "ttl": client.ttl(key),
        "fill_ms": e.fill_ms,
    }


# -- python -m streamcache inspect: one key, in words ---------------------------

_MEANINGS = {
    entry.ITEM: "written by the invalidator from a stream record's new image; reads answer it from the cache",
    entry.TOMBSTONE: "written by the invalidator for a REMOVE (a delete or a TTL expiry); "
    "reads answer 'not found' from the cache",
    entry.INVALIDATED: "written by the invalidator for a record without a new image, or to fail safe; "
    "the next read misses, reads DynamoDB and fills the key",
    entry.LEASE: "a reader missed and is reading DynamoDB to fill the key; "
    "other readers wait briefly for its fill, and any stream write cancels the fill",
    entry.FILL: "stored by a reader after a miss, under its lease (lease-checked); "
    "reads answer it from the cache",
}


def describe(client: Any, key: str) -> list[tuple[str, str]]:
    """What ``key`` holds, as (label, words) lines: kind, version, fill stamp, TTL, item."""
    import redis

    try:
        raw = client.get(key)
    except redis.ResponseError:
        return [("key", key), ("kind", f"a Redis {_type_name(client, key)}, not a streamcache entry")]
    if raw is None:
        return [("key", key), ("kind", "absent: nothing cached; the next read goes to DynamoDB and fills it")]
    e = entry.decode(raw)
    if len(raw) < entry.HEADER or e.kind != raw[:1]:  # decode reads anything unknown as a miss
        return [("key", key), ("kind", f"unrecognised value ({len(raw)} bytes): readers treat it as a miss")]
    return [
        ("key", key),
        ("kind", f"{_kind_name(e)}: {_MEANINGS[e.kind]}"),
        ("version", _version(e)),
        ("fill stamp", _stamp(e)),
        ("ttl", _ttl(client.pttl(key))),
        ("item", "none" if e.item() is None else _item_text(e)),
    ]


def _kind_name(e: entry.Entry) -> str:
    name = _KIND_NAMES[e.kind]
    if e.kind == entry.FILL and not e.payload:
        name = "not found (reader fill)"
    if e.kind in (entry.INVALIDATED, entry.LEASE) and e.fill_ms is not None:
        name += ", in fill mode"
    return name


def _version(e: entry.Entry) -> str:
    number = e.version.lstrip("0")
    if e.kind in (entry.LEASE, entry.FILL):
        inherited = f"stream record {number}" if number else "none (no stream record has written the key)"
        return f"{inherited}, inherited from the entry the reader replaced"
    return f"stream record {number or '0'} (a record with a lower SequenceNumber is ignored)"


def _stamp(e: entry.Entry) -> str:
    if e.fill_ms is None:
        return "none (not in fill mode)"
    import datetime

    when = datetime.datetime.fromtimestamp(e.fill_ms / 1000, tz=datetime.UTC).isoformat(
        timespec="milliseconds"
    )
    return (
        f"{e.fill_ms} ms ({when}): a stream record created before this (plus FILL_CLOCK_MARGIN_MS) "
        "only invalidates the key; one created after writes its own entry"
    )


def _ttl(pttl_ms: int) -> str:
    if pttl_ms == -1:
        return "none (never expires)"
    if pttl_ms < 0:
        return "expired"
    return f"{pttl_ms / 1000:.1f} s left"


def _item_text(e: entry.Entry) -> str:
    import json

    return json.dumps(e.item(), sort_keys=True)


def _type_name(client: Any, key: str) -> str:
    kind = client.type(key)
    return kind.decode() if isinstance(kind, bytes) else str(kind)
