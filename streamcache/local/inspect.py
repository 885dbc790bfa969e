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
