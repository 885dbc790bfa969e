"""``CachedTable``: a drop-in for boto3's DynamoDB ``Table`` resource that reads through the cache.

``get_item`` and ``get_items`` answer from Redis when they can, else from a
strongly consistent DynamoDB read that then fills the cache under a lease.
``query`` is cached for tables in QUERY_CACHE_TABLES (``querying``).
Everything else (``put_item``, ``scan``, ``batch_writer``, ``name``, ...) is
the wrapped Table's own attribute, unchanged.

A read the cache cannot answer exactly goes to the wrapped Table as given
and is counted (``Counters.passthrough``): ``ConsistentRead=True`` (the cache
trails the table by the stream's lag), any other argument (projections,
consumed capacity, ...), and any key DynamoDB would refuse or read
differently, so that DynamoDB raises its own error for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from streamcache.codec import Typed
from streamcache.read.cache import Cache, default_cache
from streamcache.read.dynamodb import BatchReader, in_order
from streamcache.read.querying import QueryCounters, QueryReads
from streamcache.read.values import item_from_python, item_to_python, key_from_python
from streamcache.schema import TableKeys, table_keys_from_description

# get_item arguments the cache answers exactly; ConsistentRead only when false.
_CACHEABLE = frozenset({"Key", "ConsistentRead"})
# Keys whose cache keys are remembered per table (typing and encoding a key costs
# microseconds, a cache hit only tens); past this many the memory starts again.
KEY_MEMO_SIZE = 4096

CacheKey = tuple[Typed, str]  # the key in stream form, and its cache key


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
        self._memo: dict[tuple[Any, ...], CacheKey | None] = {}
        self._queries: QueryReads | None = None

    @property
    def table(self) -> Any:
        """The wrapped boto3 Table."""
        return self._table

    @property
    def cache(self) -> Cache:
        return self._cache

    def __getattr__(self, name: str) -> Any:
        """Anything not defined here is the wrapped Table's (put_item, query, name, ...)."""
        table = self.__dict__.get("_table")
        if table is None:  # half-built (copy, pickle): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(table, name)

    def __repr__(self) -> str:
        return f"CachedTable({self._table!r}, {self._cache!r})"

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        """``{"Item": {...}}`` or ``{}``, as boto3's ``get_item`` with the same arguments.

        Answered by DynamoDB directly (boto3's whole response) when the cache
        cannot answer exactly; DynamoDB's errors are raised as botocore raises them.
        """
        cacheable = self._cacheable(kwargs)
        if cacheable is None:
            self._cache.counters.passthrough += 1
            response: dict[str, Any] = self._table.get_item(**kwargs)
            return response
        result = self._reads.lookup(self._table.name, *cacheable)
        if result.item is None:
            return {}
        # A miss answers with the item boto3 just returned; a hit converts the cached one.
        return {"Item": result.native if result.native is not None else item_to_python(result.item)}

    def get_items(self, keys: Iterable[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """The item (or None) for every key, in order; repeats allowed, any number of keys.

        Hits come from one round trip to Redis; misses from ``BatchGetItem``
        (``ConsistentRead``, 100 keys per call, unprocessed keys asked again
        with backoff), then filled under leases like ``get_item``'s.
        """
        keys = list(keys)
        answers: list[dict[str, Any] | None] = [None] * len(keys)
        indexes: list[int] = []
        typed: list[Typed] = []
        cache_keys: list[str] = []
        memo = self._memo
        for i, key in enumerate(keys):
            try:  # _cache_key's memo, inline: a call per key is a good part of a hit's cost
                cacheable = memo[(*key.items(), *map(type, key.values()))]
            except (AttributeError, TypeError, KeyError):
                cacheable = self._cache_key(key)
            if cacheable is None:  # DynamoDB answers it, or raises its own error for it
                self._cache.counters.passthrough += 1
                answers[i] = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
                continue
            indexes.append(i)
            typed.append(cacheable[0])
            cache_keys.append(cacheable[1])
        results = self._reads.lookup_many(self._table.name, typed, cache_keys) if typed else []
        for i, result in zip(indexes, results, strict=True):
            answers[i] = None if result.item is None else item_to_python(result.item)
        return answers

    def query(self, **kwargs: Any) -> dict[str, Any]:
        """boto3's ``query``: the same arguments, the same ``Items``/``Count``/``ScannedCount``/
        ``LastEvaluatedKey`` (each page cached on its own).

        Cached only for tables in QUERY_CACHE_TABLES, and only what the cache
        answers exactly (see ``streamcache.read.query``); everything else is
        the wrapped Table's ``query``, counted in ``query_counters.passthrough``.
        A cached page carries no ``ResponseMetadata``.
        """
        return self._query_reads().query(kwargs)

    @property
    def query_counters(self) -> QueryCounters:
        return self._query_reads().counters

    def _query_reads(self) -> QueryReads:
        if self._queries is None:
            settings = self._cache.settings
            self._queries = QueryReads(
                self._table,
                self._cache.pages,
                self._cache.breaker,
                enabled=self._table.name in settings.query_cache_tables,
                prefix=settings.key_prefix,
                ttl_seconds=settings.cache_ttl_seconds,
                settle_ms=settings.index_settle_ms,
            )
        return self._queries

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

    def _cacheable(self, kwargs: dict[str, Any]) -> CacheKey | None:
        if not kwargs.keys() <= _CACHEABLE or kwargs.get("ConsistentRead", False) is not False:
            return None
        return self._cache_key(kwargs.get("Key"))

    def _cache_key(self, key: object) -> CacheKey | None:
        """The key in stream form and its cache key; None when only DynamoDB can answer it."""
        try:  # types are part of the memo's key: 1, True and "1" are different keys
            signature = (*key.items(), *map(type, key.values()))  # type: ignore[attr-defined]
            return self._memo[signature]
        except (AttributeError, TypeError):  # not a dict, or an unhashable value: no memo
            return self._compute_cache_key(key)
        except KeyError:
            pass
        if len(self._memo) >= KEY_MEMO_SIZE:
            self._memo.clear()
        found = self._memo[signature] = self._compute_cache_key(key)
        return found

    def _compute_cache_key(self, key: object) -> CacheKey | None:
        typed = key_from_python(key, self._key_schema())
        if typed is None:
            return None
        return typed, self._cache.key(self._table.name, typed, self.key_schema_names)


class ResourceTable:
    """``BatchTable`` over a boto3 ``Table`` resource: Python values in and out, stream form here."""

    def __init__(self, table: Any, batch: BatchReader | None = None) -> None:
        self.table = table
        self.batch = batch if batch is not None else BatchReader()

    def get(self, table: str, key: Typed) -> Typed | None:
        return self.get_native(table, key)[0]

    def get_native(self, table: str, key: Typed) -> tuple[Typed | None, dict[str, Any] | None]:
        """The item in stream form (to fill the cache) and as boto3 returned it (to answer with)."""
        item = self.table.get_item(Key=item_to_python(key), ConsistentRead=True).get("Item")
        return (None, None) if item is None else (item_from_python(item), item)

    def get_many(self, table: str, keys: Sequence[Typed]) -> list[Typed | None]:
        found = self.batch.read(self.table.meta.client, table, [item_to_python(k) for k in keys])
        return in_order(keys, [item_from_python(item) for item in found])
