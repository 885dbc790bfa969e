"""Cache keys back to table keys, and items compared as DynamoDB compares them. Pure.

``check`` scans Redis, so it starts from cache keys: ``parse_cache_key`` undoes
``streamcache.keys.cache_key`` (split at ``-``, then ``%2D`` -> ``-`` and
``%25`` -> ``%``), typing each part from the table's key schema.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from streamcache.errors import KeyValueError
from streamcache.keys import SEPARATOR, esc
from streamcache.numbers import canonical_number
from streamcache.schema import TableKeys

Typed = dict[str, Any]


def unesc(text: str) -> str:
    return text.replace("%2D", "-").replace("%25", "%")


def key_pattern(table: str, prefix: str = "") -> str:
    """A SCAN MATCH pattern for the table's cache keys (glob characters escaped)."""
    literal = prefix + esc(table) + SEPARATOR
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in literal) + "*"


def parse_cache_key(cache_key: str, table: str, keys: TableKeys, prefix: str = "") -> dict[str, Typed]:
    """The typed DynamoDB key a cache key names; ``KeyValueError`` if it names none of ``table``."""
    head = prefix + esc(table) + SEPARATOR
    if not cache_key.startswith(head) or keys.types is None:
        raise KeyValueError(f"cache key {cache_key!r} is not a key of table {table!r}")
    parts = cache_key[len(head) :].split(SEPARATOR)
    if len(parts) != len(keys.names):
        raise KeyValueError(
            f"cache key {cache_key!r} has {len(parts)} key part(s), table {table!r} has {len(keys.names)}"
        )
    return {
        name: _typed(type_, unesc(part))
        for name, type_, part in zip(keys.names, keys.types, parts, strict=True)
    }


def _typed(type_: str, text: str) -> Typed:
    if type_ == "B":
        return {"B": base64.b64decode(text)}
    return {type_: text}


def same_item(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Equal as DynamoDB items: numbers by value, sets in any order (stream form: binary as base64)."""
    if a is None or b is None:
        return a is b
    return _norm_item(a) == _norm_item(b)


def _norm_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _norm(value) for name, value in item.items()}


def _norm(value: Mapping[str, Any]) -> Any:
    ((type_, raw),) = value.items()
    if type_ == "N":
        return ("N", canonical_number(raw))
    if type_ == "NS":
        return ("NS", sorted(canonical_number(n) for n in raw))
    if type_ in ("SS", "BS"):
        return (type_, sorted(raw))
    if type_ == "M":
        return ("M", _norm_item(raw))
    if type_ == "L":
        return ("L", [_norm(v) for v in raw])
    return (type_, raw)
