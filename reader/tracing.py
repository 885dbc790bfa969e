"""X-Ray subsegments around the Redis and DynamoDB calls (Powertools Tracer).

Responses are never captured: they hold item contents. Locally and in tests
the tracer is disabled (POWERTOOLS_TRACE_DISABLED=true, or outside Lambda
Powertools disables it itself), and the wrappers cost a few microseconds.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Tracer

from reader.table import DynamoTable
from streamcache.codec import Typed
from streamcache.lookup import Claim, Lease, ReaderCache

tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "streamcache-reader"))


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
