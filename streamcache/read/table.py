"""``CachedTable``: a drop-in for boto3's DynamoDB ``Table`` resource that reads through the cache.

``get_item`` and ``get_items`` answer from Redis when they can, else from a
strongly consistent DynamoDB read that then fills the cache under a lease.
Everything else (``put_item``, ``query``, ``batch_writer``, ``name``, ...) is
the wrapped Table's own attribute, unchanged.

A read the cache cannot answer exactly goes to the wrapped Table as given
and is counted (``Counters.passthrough``): ``ConsistentRead=True`` (the cache
trails the table by the stream's lag), any other argument (projections,
consumed capacity, ...), and any key DynamoDB would refuse or read
differently, so that DynamoDB raises its own error for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamcache.codec import Typed
from streamcache.read.cache import Cache, default_cache
from streamcache.read.dynamodb import ResourceTable
from streamcache.read.values import item_to_python, key_from_python
from streamcache.schema import TableKeys, table_keys_from_description

# get_item arguments the cache answers exactly; ConsistentRead only when false.
_CACHEABLE = frozenset({"Key", "ConsistentRead"})


class CachedTable:
    """Wraps a boto3 ``Table`` (``boto3.resource("dynamodb").Table(name)``).

    ``cache``: a ``Cache`` to share between tables; by default one ``Cache``
    per process, configured from the environment.
    """

    def __init__(self, table: Any, cache: Cache | None = None) -> None:
        self._table = table
        self._cache = cache if cache is not None else default_cache()
        self._reads = self._cache.reads(ResourceTable(table))
        self._keys: TableKeys | None = None

    @property
    def table(self) -> Any:
        """The wrapped boto3 Table."""
        return self._table

    @property
    def cache(self) -> Cache:
        return self._cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def __repr__(self) -> str:
        return f"CachedTable({self._table!r}, {self._cache!r})"

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        """``{"Item": {...}}`` or ``{}``, as boto3's ``get_item`` with the same arguments.

        Answered by DynamoDB directly (boto3's whole response) when the cache
        cannot answer exactly; DynamoDB's errors are raised as botocore raises them.
        """
        key = self._cacheable_key(kwargs)
        if key is None:
            self._cache.counters.passthrough += 1
            response: dict[str, Any] = self._table.get_item(**kwargs)
            return response
        name = self._table.name
        result = self._reads.lookup(name, key, self._cache.key(name, key, self.key_schema_names))
        return {} if result.item is None else {"Item": item_to_python(result.item)}

    def get_items(self, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """The item (or None) for every key, in order; repeats allowed, any number of keys.

        Hits come from one round trip to Redis; misses from ``BatchGetItem``
        (``ConsistentRead``, 100 keys per call, unprocessed keys asked again
        with backoff), then filled under leases like ``get_item``'s.
        """
        typed = [key_from_python(key, self._key_schema()) for key in keys]
        answers: list[dict[str, Any] | None] = [None] * len(typed)
        cached = [i for i, key in enumerate(typed) if key is not None]
        for i, key in enumerate(typed):
            if key is None:  # DynamoDB answers it, or raises its own error for it
                self._cache.counters.passthrough += 1
                answers[i] = self._table.get_item(Key=keys[i], ConsistentRead=True).get("Item")
        name = self._table.name
        cached_keys = [typed[i] for i in cached]
        cache_keys = [self._cache.key(name, k, self.key_schema_names) for k in cached_keys if k is not None]
        results = self._reads.lookup_many(name, [k for k in cached_keys if k is not None], cache_keys)
        for i, result in zip(cached, results, strict=True):
            answers[i] = None if result.item is None else item_to_python(result.item)
        return answers

    @property
    def key_schema_names(self) -> tuple[str, ...]:
        """The key attribute names, hash first (DescribeTable once, through the wrapped Table)."""
        return self._key_schema().names

    def _key_schema(self) -> TableKeys:
        if self._keys is None:
            description = {
                "KeySchema": self._table.key_schema,
                "AttributeDefinitions": self._table.attribute_definitions,
            }
            self._keys = table_keys_from_description(description)
        return self._keys

    def _cacheable_key(self, kwargs: dict[str, Any]) -> Typed | None:
        if not kwargs.keys() <= _CACHEABLE or kwargs.get("ConsistentRead", False) is not False:
            return None
        return key_from_python(kwargs.get("Key"), self._key_schema())
