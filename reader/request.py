"""A read request, validated and typed: which table, which typed key, which answer format.

Pure. Key values are typed from the table's key schema (``TableKeys.types``)
and checked against DynamoDB's key limits before any call is made, so a bad
request is a 400 naming the attribute, never a DynamoDB ValidationException.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streamcache.codec import AttributeValueError, number_text
from streamcache.errors import KeyValueError, StreamCacheError
from streamcache.keys import (
    MAX_HASH_BYTES,
    MAX_RANGE_BYTES,
    base64_size,
    canonical_base64,
    check_size,
    utf8_size,
)
from streamcache.numbers import canonical_number
from streamcache.schema import TableKeys

FORMATS = ("plain", "dynamodb")
FORMAT_PARAM = "format"
_TYPE_NAMES = {"S": "string (S)", "N": "number (N)", "B": "binary (B, base64 text)"}

Typed = dict[str, Any]


class RequestError(StreamCacheError):
    """The caller's mistake (or a refusal): answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> RequestError:
    return RequestError(400, message)


def check_table(table: object, allowed: frozenset[str]) -> str:
    if not isinstance(table, str) or not table:
        raise bad_request("no table: pass a table name (or set TABLE_NAME for a default)")
    if table not in allowed:
        raise RequestError(403, f"table {table!r} is not readable here (not in ALLOWED_TABLES)")
    return table


def check_format(fmt: object) -> str:
    if fmt not in FORMATS:
        raise bad_request(f"format {fmt!r} is not one of: plain, dynamodb")
    return str(fmt)


# -- direct invoke -------------------------------------------------------------


def key_from_json(key: object, schema: TableKeys) -> Typed:
    """A direct invoke's ``key`` map (plain JSON or typed values) as a typed, checked key."""
    if not isinstance(key, Mapping):
        raise bad_request(f"key must be a JSON object of key attributes ({_names(schema)})")
    _check_names(key.keys(), schema, "key attribute")
    return {
        name: _checked(name, i, schema, _typed_from_json(name, key[name], _type_of(schema, i)))
        for i, name in enumerate(schema.names)
    }


def key_value_from_json(name: str, value: object, expected: str) -> Typed:
    """One key attribute's value (plain JSON or typed) as a typed, checked value (queries)."""
    typed = _typed_from_json(name, value, expected)
    ((type_, raw),) = typed.items()
    if type_ != expected:
        raise bad_request(f"key attribute {name!r} must be a {_TYPE_NAMES[expected]}, not {type_!r}")
    try:
        return {type_: _canonical(type_, raw, MAX_HASH_BYTES)}
    except KeyValueError as err:
        raise bad_request(f"key attribute {name!r}: {err}") from err


def _typed_from_json(name: str, value: object, expected: str) -> Typed:
    if isinstance(value, Mapping):
        if len(value) != 1 or not all(isinstance(v, str) for v in value.values()):
            raise bad_request(f"key attribute {name!r} is not a typed value like {{'{expected}': '...'}}")
        return dict(value)
    if isinstance(value, str):
        # JSON has no binary: a string for a B attribute is its base64 text.
        return {"B" if expected == "B" else "S": value}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return {"N": number_text(value)}
        except AttributeValueError as err:
            raise bad_request(f"key attribute {name!r}: {err}") from err
    raise bad_request(f"key attribute {name!r} must be a {_TYPE_NAMES[expected]}")


# -- HTTP query string ---------------------------------------------------------


def key_from_query(params: Iterable[tuple[str, str]], schema: TableKeys) -> tuple[Typed, str]:
    """HTTP query parameters as a typed, checked key, plus the answer format."""
    values: dict[str, str] = {}
    for name, value in params:
        if name in values:
            raise bad_request(f"query parameter {name!r} is given more than once")
        values[name] = value
    fmt = "plain"
    if FORMAT_PARAM in values and FORMAT_PARAM not in schema.names:  # a key attribute wins
        fmt = check_format(values.pop(FORMAT_PARAM))
    _check_names(values.keys(), schema, "query parameter")
    key = {
        name: _checked(name, i, schema, {_type_of(schema, i): values[name]})
        for i, name in enumerate(schema.names)
    }
    return key, fmt


# -- shared checks -------------------------------------------------------------


def _check_names(given: Iterable[str], schema: TableKeys, what: str) -> None:
    given = set(given)
    missing = [n for n in schema.names if n not in given]
    if missing:
        raise bad_request(f"key attribute {missing[0]!r} is missing (the table is keyed by {_names(schema)})")
    extra = sorted(given - set(schema.names))
    if extra:
        raise bad_request(f"unexpected {what} {extra[0]!r} (the table is keyed by {_names(schema)})")


def _checked(name: str, index: int, schema: TableKeys, value: Typed) -> Typed:
    """Check type, emptiness and size; return the canonical typed value."""
    expected = _type_of(schema, index)
    ((type_, raw),) = value.items()
    if type_ != expected:
        raise bad_request(f"key attribute {name!r} must be a {_TYPE_NAMES[expected]}, not {type_!r}")
    try:
        return {type_: _canonical(type_, raw, MAX_HASH_BYTES if index == 0 else MAX_RANGE_BYTES)}
    except KeyValueError as err:
        raise bad_request(f"key attribute {name!r}: {err}") from err


def _canonical(type_: str, raw: str, limit: int) -> str:
    if type_ == "N":
        return canonical_number(raw)
    if type_ == "B":
        raw = canonical_base64(raw)
    size = utf8_size(raw) if type_ == "S" else base64_size(raw)  # a lone surrogate: KeyValueError
    if size == 0:
        raise KeyValueError("value is empty; DynamoDB key values must not be empty")
    check_size(size, limit)
    return raw


def _type_of(schema: TableKeys, index: int) -> str:
    # KeySchemas.typed_keys_of guarantees types; S is DynamoDB's only other choice.
    return schema.types[index] if schema.types else "S"


def _names(schema: TableKeys) -> str:
    return ", ".join(schema.names)
