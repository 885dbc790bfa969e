"""The DynamoDB side of a read: strongly consistent ``GetItem`` and ``BatchGetItem``.

Consistent, because an eventually consistent read can return the item as it
was before a write whose invalidation already ran: filling that would leave
the cache stale until the next write ("no stale fill").

``DynamoTable`` answers in stream form (what the cache stores) over a
low-level client (the reader); the library's ``ResourceTable`` (in
``table``) does the same over a boto3 Table resource. Both batch through
``BatchReader``. Errors are botocore's, unchanged. Nothing here imports
boto3: the reader's cold start does not pay for it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from redis.backoff import AbstractBackoff, ExponentialWithJitterBackoff

from streamcache.codec import Typed, item_from_boto3
from streamcache.errors import UnprocessedKeysError
from streamcache.keys import encode_component

# BatchGetItem takes at most 100 keys per call.
BATCH_KEYS = 100
# UnprocessedKeys (throttling, or a reply past 16 MB) are asked again after a
# jittered exponential pause, as the DynamoDB guide advises, this many times.
BATCH_ATTEMPTS = 8


class Table(Protocol):
    def get(self, table: str, key: Typed) -> Typed | None:
        """The item in stream form, or None when it does not exist."""
        ...


class NativeTable(Table, Protocol):
    def get_native(self, table: str, key: Typed) -> tuple[Typed | None, Any]:
        """``get``, and the item as read in the table's own form (None with None)."""
        ...


class BatchTable(Table, Protocol):
    def get_many(self, table: str, keys: Sequence[Typed]) -> list[Typed | None]:
        """``get`` for distinct keys, in order (a table without it is read one key at a time)."""
        ...


class DynamoTable:
    """``BatchTable`` over a low-level boto3 DynamoDB client."""

    def __init__(self, client: Any, batch: BatchReader | None = None) -> None:
        self.client = client
        self.batch = batch if batch is not None else BatchReader()

    def get(self, table: str, key: Typed) -> Typed | None:
        response = self.client.get_item(TableName=table, Key=key_to_boto3(key), ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else item_from_boto3(item)

    def get_many(self, table: str, keys: Sequence[Typed]) -> list[Typed | None]:
        found = self.batch.read(self.client, table, [key_to_boto3(k) for k in keys])
        return in_order(keys, [item_from_boto3(item) for item in found])


class BatchReader:
    """``BatchGetItem`` in calls of 100 keys, asking again for ``UnprocessedKeys`` with backoff."""

    def __init__(
        self,
        backoff: AbstractBackoff | None = None,
        attempts: int = BATCH_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backoff = backoff if backoff is not None else ExponentialWithJitterBackoff(cap=2.0, base=0.05)
        self.attempts = attempts
        self.sleep = sleep

    def read(self, client: Any, table: str, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Every item found, in the order DynamoDB returned them (BatchGetItem does not keep order)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_KEYS):
            found.extend(self._read_chunk(client, table, list(keys[start : start + BATCH_KEYS])))
        return found

    def _read_chunk(self, client: Any, table: str, keys: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.backoff.compute(attempt - 1))
            response = client.batch_get_item(RequestItems=request)
            found.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
        pending = len(request.get(table, {}).get("Keys", []))
        raise UnprocessedKeysError(table, pending, self.attempts)


def in_order(keys: Sequence[Typed], items: list[Typed]) -> list[Typed | None]:
    """Match returned items to the keys asked for, by their canonical key values."""
    names = sorted(keys[0]) if keys else []
    by_identity = {_identity(item, names): item for item in items}
    return [by_identity.get(_identity(key, names)) for key in keys]


def _identity(values: Mapping[str, Any], names: list[str]) -> tuple[str, ...]:
    # encode_component canonicalises (1.50 and 1.5 are one number key, as in DynamoDB).
    return tuple(encode_component(name, values[name]) for name in names)


def key_to_boto3(key: Typed) -> Typed:
    """boto3 wants ``bytes`` for B (it base64-encodes them itself)."""
    return {name: _value(v) for name, v in key.items()}


def _value(value: Typed) -> Typed:
    if "B" in value:
        return {"B": base64.b64decode(value["B"])}
    return value
