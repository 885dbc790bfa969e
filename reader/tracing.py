"""X-Ray subsegments around the Redis and DynamoDB calls (Powertools Tracer).

Responses are never captured: they hold item contents. Locally and in tests
the tracer is disabled (POWERTOOLS_TRACE_DISABLED=true, or outside Lambda
Powertools disables it itself); then no wrapper is installed at all, because
even a disabled X-Ray wrapper costs tens of microseconds on a cache hit.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Tracer

from reader.table import DynamoTable, Table
from streamcache.codec import Typed
from streamcache.lookup import Claim, Lease, ReaderCache

tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "streamcache-reader"))
TRACING = not tracer.disabled


class TracedTable(DynamoTable):
    @tracer.capture_method(capture_response=False)
    def get(self, table: str, key: Typed) -> Typed | None:
        return super().get(table, key)


class TracedCache(ReaderCache):
    @tracer.capture_method(capture_response=False)
    def claim(self, key: str) -> Claim:
        return super().claim(key)

    @tracer.capture_method(capture_response=False)
    def fill(self, key: str, lease: Lease, payload: bytes, ttl_seconds: int) -> bool:
        return super().fill(key, lease, payload, ttl_seconds)


def table_port(client: Any) -> Table:
    return TracedTable(client) if TRACING else DynamoTable(client)


def cache_port(client: Any) -> ReaderCache:
    return TracedCache(client) if TRACING else ReaderCache(client)
