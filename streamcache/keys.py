"""The one function that computes cache keys (docs/protocol.md).

``key = CACHE_KEY_PREFIX + esc(table) + "-" + enc(hash) [+ "-" + enc(range)]``

``esc`` replaces ``%`` with ``%25`` and then ``-`` with ``%2D``, so a component
never contains the separator and the encoding is injective: ``a-b``/``c`` and
``a``/``b-c`` give different keys, while keys without ``-`` or ``%`` look
exactly like the seed's ``orders-u1-42``.

Every component is bounded by DynamoDB's own key limits (hash 2048 bytes,
range 1024; numbers by their range), so no input can build a huge key or
lease, and text that is not valid Unicode (a lone surrogate) is refused
here instead of failing later as it is sent to Redis.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from streamcache.errors import KeyValueError, RecordError
from streamcache.numbers import canonical_number

SEPARATOR = "-"
# DynamoDB table names: at most 255 of these characters (3 at least in AWS; emulators allow fewer).
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
# DynamoDB's limits on key attribute values: bytes of UTF-8 for S, raw bytes for B.
MAX_HASH_BYTES = 2048
MAX_RANGE_BYTES = 1024


def esc(text: str) -> str:
    return text.replace("%", "%25").replace("-", "%2D")


def cache_key(
    table: str,
    key: Mapping[str, Mapping[str, Any]],
    key_names: tuple[str, ...],
    prefix: str = "",
) -> str:
    """Cache key for the item whose typed key attributes are ``key``.

    ``key`` is in DynamoDB's typed form (``{"pk": {"S": "u1"}, "sk": {"N": "42"}}``);
    ``key_names`` is ``(hash,)`` or ``(hash, range)`` from the table's key
    schema, never the order of ``key``. Raises ``KeyValueError`` naming the
    attribute that is missing or cannot be encoded.
    """
    parts = [esc(table)]
    for index, name in enumerate(key_names):
        value = key.get(name)
        if value is None:
            raise KeyValueError(f"key attribute {name!r} is missing")
        parts.append(encode_component(name, value, MAX_HASH_BYTES if index == 0 else MAX_RANGE_BYTES))
    return prefix + SEPARATOR.join(parts)


def encode_component(name: str, value: Mapping[str, Any], limit: int = MAX_HASH_BYTES) -> str:
    """Encode one typed key attribute value (S, N or B) of at most ``limit`` bytes."""
    if not (type(value) is dict or isinstance(value, Mapping)) or len(value) != 1:  # dict: no ABC check
        raise KeyValueError(f"key attribute {name!r} is not a typed value like {{'S': '...'}}")
    ((type_, raw),) = value.items()
    try:
        if type_ == "S" and isinstance(raw, str):
            if not (raw.isascii() and len(raw) <= limit):  # ASCII: one byte a character, no encoding
                check_size(utf8_size(raw), limit)
            return esc(raw)
        if type_ == "N" and isinstance(raw, str):
            return esc(canonical_number(raw))  # bounded by DynamoDB's number range
        if type_ == "B" and isinstance(raw, (str, bytes, bytearray)):
            text = canonical_base64(raw)
            check_size(base64_size(text), limit)
            return text
    except KeyValueError as err:
        raise KeyValueError(f"key attribute {name!r}: {err}") from err
    raise KeyValueError(f"key attribute {name!r} has type {type_!r}; key attributes are S, N or B")


def utf8_size(text: str) -> int:
    """Bytes of UTF-8; ``KeyValueError`` for text that has none (a lone surrogate)."""
    if text.isascii():  # most keys: no encoding needed to know
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as err:
        raise KeyValueError(
            f"value is not valid Unicode text (a lone surrogate at character {err.start})"
        ) from None


def base64_size(text: str) -> int:
    """Bytes encoded by canonical base64 ``text``."""
    return len(text) * 3 // 4 - text.count("=")


def check_size(size: int, limit: int) -> None:
    if size > limit:
        raise KeyValueError(f"value is {size} bytes; DynamoDB allows at most {limit} for this key")


def canonical_base64(raw: str | bytes | bytearray) -> str:
    """Standard base64 of the bytes; text input is validated and re-encoded."""
    if isinstance(raw, str):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as err:
            raise KeyValueError("value is not valid base64") from err
    return base64.b64encode(raw).decode("ascii")


def table_from_arn(arn: object) -> str:
    """Table name from ``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL``."""
    if not isinstance(arn, str):
        raise RecordError(f"eventSourceARN {arn!r} is not a DynamoDB table stream ARN")
    return _table_from_arn(arn)


@lru_cache(maxsize=256)  # one ARN per shard: parsed once, not once per record
def _table_from_arn(arn: str) -> str:
    parts = arn.split(":", 5)
    resource = parts[5].split("/") if len(parts) == 6 else []
    if (
        len(parts) != 6
        or parts[2] != "dynamodb"
        or len(resource) < 2
        or resource[0] != "table"
        or not _TABLE_NAME.fullmatch(resource[1])
    ):
        raise RecordError(f"eventSourceARN {arn!r} is not a DynamoDB table stream ARN")
    return resource[1]
