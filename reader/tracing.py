"""X-Ray subsegments around the Redis and DynamoDB calls (Powertools Tracer).

Responses are never captured: they hold item contents. Locally and in tests
tracing is off (POWERTOOLS_TRACE_DISABLED=true, or outside Lambda, by
Powertools' own rule); then no Tracer is made and no wrapper installed at all:
constructing one imports the X-Ray SDK (~200 ms of cold start), and even a
disabled wrapper costs tens of microseconds on a cache hit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools.tracing.tracer import Tracer

from streamcache.codec import Typed
from streamcache.read.dynamodb import BatchTable, DynamoTable
from streamcache.read.lookup import Claim, Lease, ReaderCache
from streamcache.read.near import NearCache

# Powertools' rule (env var, Lambda / SAM / Chalice detection); reading it imports nothing heavy.
TRACING = not Tracer._is_tracer_disabled()

_tracer: Tracer | None = None


def tracer() -> Tracer:
    global _tracer
    if _tracer is None:
        _tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "streamcache-reader"))
    return _tracer


def traced_handler(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    if not TRACING:
        return handler
    return tracer().capture_lambda_handler(handler, capture_response=False)


def table_port(client: Any) -> BatchTable:
    if not TRACING:
        return DynamoTable(client)
    capture = tracer().capture_method(capture_response=False)

    class TracedTable(DynamoTable):
        @capture
        def get(self, table: str, key: Typed) -> Typed | None:
            return super().get(table, key)

        @capture
        def get_many(self, table: str, keys: Sequence[Typed]) -> list[Typed | None]:
            return super().get_many(table, keys)

    return TracedTable(client)


def cache_port(client: Any, near: NearCache | None = None) -> ReaderCache:
    if not TRACING:
        return ReaderCache(client, near=near)
    capture = tracer().capture_method(capture_response=False)

    class TracedCache(ReaderCache):
        @capture
        def claim(self, key: str) -> Claim:
            return super().claim(key)

        @capture
        def fill(self, key: str, lease: Lease, payload: bytes, ttl_seconds: int) -> bool:
            return super().fill(key, lease, payload, ttl_seconds)

        @capture
        def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
            return super().get_many(keys)

        @capture
        def lease_many(self, keys: Sequence[str]) -> list[Claim]:
            return super().lease_many(keys)

        @capture
        def fill_many(self, fills: Sequence[tuple[str, Lease, bytes, int]]) -> list[bool]:
            return super().fill_many(fills)

    return TracedCache(client, near=near)
