"""The DynamoDB side of ``check`` and ``warm``: describe, consistent reads, parallel key scans.

boto3's low-level client, made lazily by ``streamcache.aws`` (the caller
passes it in). Every call asks for its consumed capacity so ``warm`` can keep
to ``--max-rcu``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from streamcache.codec import item_from_boto3
from streamcache.errors import StreamCacheError
from streamcache.keys import cache_key
from streamcache.ops.keyspace import parse_cache_key
from streamcache.ops.warm import RateLimit
from streamcache.schema import TableKeys, table_keys_from_description

Typed = dict[str, Any]
BATCH_GET_MAX = 100  # DynamoDB's limit per BatchGetItem


class TableNotFoundError(StreamCacheError):
    """The table named on the command line does not exist (or cannot be described)."""


def describe_keys(client: Any, table: str) -> TableKeys:
    try:
        return table_keys_from_description(client.describe_table(TableName=table)["Table"])
    except client.exceptions.ResourceNotFoundException as err:
        raise TableNotFoundError(
            f"table {table!r} not found (check --table and the region/endpoint)"
        ) from err


class ConsistentReader:
    """Cache key -> the item, by a strongly consistent GetItem (``check``)."""

    def __init__(self, client: Any, table: str, keys: TableKeys, prefix: str = "") -> None:
        self._client, self._table, self._keys, self._prefix = client, table, keys, prefix

    def __call__(self, name: str) -> Typed | None:
        key = parse_cache_key(name, self._table, self._keys, self._prefix)
        found = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        return None if found is None else item_from_boto3(found)


class Budget:
    """At most ``limit`` items across all segments (None: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        with self._lock:
            if self._left is None:
                return wanted
            granted = min(wanted, self._left)
            self._left -= granted
            return granted


class ScanTable:
    """``warm``'s WarmTable over DynamoDB: key-only Scan pages, consistent BatchGetItem."""

    def __init__(
        self,
        client: Any,
        table: str,
        keys: TableKeys,
        *,
        rate: RateLimit,
        budget: Budget,
        page_size: int = 100,
    ) -> None:
        self._client, self._table, self._keys = client, table, keys
        self._rate, self._budget, self._page_size = rate, budget, page_size
        names = {f"#k{i}": n for i, n in enumerate(keys.names)}
        self._projection = {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}

    def pages(self, segment: int, segments: int) -> Iterator[list[Typed]]:
        start: dict[str, Any] | None = None
        while True:
            self._rate.wait()
            extra = {"ExclusiveStartKey": start} if start else {}
            page = self._client.scan(
                TableName=self._table,
                Segment=segment,
                TotalSegments=segments,
                Limit=self._page_size,
                ReturnConsumedCapacity="TOTAL",
                **self._projection,
                **extra,
            )
            self._spend(page)
            items = page.get("Items", [])
            granted = self._budget.take(len(items))
            if granted:
                yield items[:granted]
            start = page.get("LastEvaluatedKey")
            if not start or granted < len(items):
                return

    def read(self, keys: list[Typed]) -> list[Typed | None]:
        found: dict[str, Typed] = {}
        for i in range(0, len(keys), BATCH_GET_MAX):
            found.update(self._batch_get(keys[i : i + BATCH_GET_MAX]))
        return [found.get(self._name(k)) for k in keys]

    def _batch_get(self, keys: list[Typed]) -> dict[str, Typed]:
        found: dict[str, Typed] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(10):
            self._rate.wait()
            response = self._client.batch_get_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")
            self._spend(response)
            for item in response.get("Responses", {}).get(self._table, []):
                found[self._name(item)] = item_from_boto3(item)
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(0.05 * 2**attempt, 2.0))  # throttled: back off, then ask for the rest
        raise StreamCacheError(f"BatchGetItem on {self._table!r} kept returning unprocessed keys")

    def _name(self, item: Typed) -> str:
        return cache_key(self._table, item, self._keys.names)

    def _spend(self, response: dict[str, Any]) -> None:
        consumed = response.get("ConsumedCapacity")
        if isinstance(consumed, list):
            units = sum(float(c.get("CapacityUnits", 0)) for c in consumed)
        else:
            units = float((consumed or {}).get("CapacityUnits", 0))
        self._rate.spend(units)
