"""Cache-aside with leases: answer from Redis, else read DynamoDB and fill under a lease.

Redis is an optimisation, never a dependency: any Redis error (or an open
circuit breaker) sends the read to DynamoDB, and the answer says
``source: dynamodb``. Only DynamoDB errors reach the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from redis.exceptions import RedisError

from streamcache import entry
from streamcache.circuit import CircuitBreaker
from streamcache.codec import Typed
from streamcache.entry import Entry
from streamcache.read.dynamodb import Table
from streamcache.read.lookup import Claim, Lease, ReaderCache

CACHE, DYNAMODB = "cache", "dynamodb"


@dataclass(slots=True)
class Result:
    item: Typed | None  # stream form; None = not found
    source: str  # CACHE or DYNAMODB
    filled: bool = False
    fill_rejected: bool = False
    redis_errors: int = 0
    bypassed: bool = False  # circuit open: Redis not tried


@dataclass(frozen=True)
class Expiry:
    found_s: int
    not_found_s: int


class CacheAside:
    """One per execution environment: a Redis side, a DynamoDB side, a breaker."""

    def __init__(self, cache: ReaderCache, table: Table, breaker: CircuitBreaker, expiry: Expiry) -> None:
        self.cache = cache
        self.table = table
        self.breaker = breaker
        self.expiry = expiry

    def lookup(self, table: str, key: Typed, cache_key: str) -> Result:
        errors = 0
        claim: Claim = None
        bypassed = not self.breaker.allow()
        if not bypassed:
            claim, errors = self._claim(cache_key)
        if isinstance(claim, Entry):
            hit = _from_entry(claim)
            if hit is not None:
                return hit
            claim = None  # unreadable payload: read DynamoDB, do not fill over it
        item = self.table.get(table, key)
        result = Result(item, DYNAMODB, redis_errors=errors, bypassed=bypassed)
        if isinstance(claim, Lease):
            self._fill(cache_key, claim, item, result)
        return result

    def _claim(self, cache_key: str) -> tuple[Claim, int]:
        try:
            claim = self.cache.claim(cache_key)
        except RedisError:
            self.breaker.failure()
            return None, 1
        self.breaker.success()
        return claim, 0

    def _fill(self, cache_key: str, lease: Lease, item: Typed | None, result: Result) -> None:
        payload = b"" if item is None else entry.encode_item(item)
        ttl = self.expiry.found_s if item is not None else self.expiry.not_found_s
        try:
            result.filled = self.cache.fill(cache_key, lease, payload, ttl)
        except RedisError:
            self.breaker.failure()
            result.redis_errors += 1
            return
        self.breaker.success()
        # Rejected: a write replaced the lease after our read began. What we read was
        # consistent when read, so it is still a correct answer; it just is not cached.
        result.fill_rejected = not result.filled


def _from_entry(found: Entry) -> Result | None:
    try:
        return Result(found.item(), CACHE)
    except orjson.JSONDecodeError:
        return None
