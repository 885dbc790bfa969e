"""``CachedTable.query``: cached pages, invalidated by the stream, filled only under the marker seen.

A query reads one partition. Its page is served from Redis only while the
partition's marker is the one the page was filled under; every stream
record the invalidator applies to the partition moves the marker. On a miss
the query goes to DynamoDB (consistently for the table and its local
indexes), and the answer is stored only if no record moved the marker since
it was read before the query (``qfill.lua``).

A global secondary index is the hard case: DynamoDB updates it
asynchronously, apart from the stream, so a record can be applied (marker
moved) before the index shows its write, and a query read after the move can
still miss that write; no marker check catches it. The rule: a GSI page is
stored only when the marker it was read under moved more than
``INDEX_SETTLE_MS`` before the read began (both times on Redis's clock). It
rests on one assumption, stated in docs/query-cache.md: DynamoDB propagates a
write to a GSI within ``INDEX_SETTLE_MS`` of the write.

Redis down or slow, or the breaker open: the query goes to DynamoDB, never
an error. DynamoDB's own errors reach the caller unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from streamcache.circuit import CircuitBreaker
from streamcache.partitions import TableIndexes, layout_from_description
from streamcache.read.cacheaside import CACHE, DYNAMODB
from streamcache.read.pages import Pages, Seen
from streamcache.read.query import QueryPlan, decode_page, encode_page, plan_query


@dataclass
class QueryCounters:
    hits: int = 0
    misses: int = 0
    fills: int = 0
    fills_refused: int = 0  # a record moved the partition during the read, or a GSI not settled
    passthrough: int = 0  # not cacheable: table not opted in, arguments, ConsistentRead=True
    redis_errors: int = 0


@dataclass
class QueryReads:
    """The query side of one ``CachedTable``."""

    table: Any  # the boto3 Table resource
    pages: Pages
    breaker: CircuitBreaker
    enabled: bool  # the table is in QUERY_CACHE_TABLES
    prefix: str
    ttl_seconds: int
    settle_ms: int
    counters: QueryCounters = field(default_factory=QueryCounters)
    _layout: TableIndexes | None = None

    def query(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return self.answer(kwargs)[0]

    def answer(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The response, and where it came from: ``"cache"`` or ``"dynamodb"``."""
        plan = plan_query(kwargs, self.table.name, self.layout(), self.prefix) if self.enabled else None
        if plan is None:
            self.counters.passthrough += 1
            return self._dynamodb(kwargs), DYNAMODB
        seen = self._read(plan)
        if seen is not None and seen.payload is not None:
            self.counters.hits += 1
            return decode_page(seen.payload), CACHE
        self.counters.misses += 1
        response = self._dynamodb({**kwargs, "ConsistentRead": not plan.global_index})
        if seen is not None:
            self._fill(plan, seen, response)
        return response, DYNAMODB

    def layout(self) -> TableIndexes:
        """The table's keys, indexes and stream view (one DescribeTable, through the Table resource)."""
        if self._layout is None:
            table = self.table
            self._layout = layout_from_description(
                {
                    "KeySchema": table.key_schema,
                    "GlobalSecondaryIndexes": table.global_secondary_indexes,
                    "LocalSecondaryIndexes": table.local_secondary_indexes,
                    "StreamSpecification": table.stream_specification,
                }
            )
        return self._layout

    def _read(self, plan: QueryPlan) -> Seen | None:
        if not self.breaker.allow():
            return None
        try:
            seen = self.pages.read(plan)
        except RedisError:
            self._redis_failed()
            return None
        self.breaker.success()
        return seen

    def _fill(self, plan: QueryPlan, seen: Seen, response: dict[str, Any]) -> None:
        try:
            stored = self.pages.fill(plan, seen, encode_page(response), self.ttl_seconds, self.settle_ms)
        except RedisError:
            self._redis_failed()
            return
        self.breaker.success()
        if stored:
            self.counters.fills += 1
        else:
            self.counters.fills_refused += 1

    def _redis_failed(self) -> None:
        self.breaker.failure()
        self.counters.redis_errors += 1

    def _dynamodb(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.table.query(**kwargs)
        return response
