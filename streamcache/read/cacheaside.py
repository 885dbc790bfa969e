"""Cache-aside with leases: answer from Redis, else read DynamoDB and fill under a lease.

Redis is an optimisation, never a dependency: any Redis error (or an open
circuit breaker) sends the read to DynamoDB, and the answer says
``source: dynamodb``. Only DynamoDB errors reach the caller.

``lookup`` reads one key; ``lookup_many`` runs the same steps for a batch,
one round trip per step (MGET, leases, BatchGetItem, fills), so a write that
lands between a key's lease and its fill rejects that fill exactly as for one
key. Every result is added to ``Counters``, which a caller reads or takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import orjson
from redis.exceptions import RedisError

from streamcache import entry
from streamcache.circuit import CircuitBreaker
from streamcache.codec import Typed
from streamcache.entry import Entry
from streamcache.read.dynamodb import Table
from streamcache.read.lookup import Claim, Lease, ReaderCache

Source = Literal["cache", "dynamodb"]
CACHE: Source = "cache"
DYNAMODB: Source = "dynamodb"


@dataclass(slots=True)
class Result:
    item: Typed | None  # stream form; None = not found
    source: Source
    filled: bool = False
    fill_rejected: bool = False
    redis_errors: int = 0
    bypassed: bool = False  # circuit open: Redis not tried
    # The item as a ``NativeTable`` read it (the library's boto3 values), when it was read so.
    native: Any = None


@dataclass(frozen=True)
class Expiry:
    found_s: int
    not_found_s: int


@dataclass
class Counters:
    """What the reads did since the last ``take()``. Plain integers: a read costs no locking.

    ``passthrough`` counts reads sent straight to DynamoDB because the cache
    cannot answer them exactly (``ConsistentRead=True``, other arguments).
    """

    hits: int = 0
    misses: int = 0
    fills: int = 0
    fills_rejected: int = 0
    redis_errors: int = 0
    bypassed: int = 0
    passthrough: int = 0

    def add(self, result: Result) -> None:
        if result.source == CACHE:
            self.hits += 1
            return
        self.misses += 1
        self.fills += result.filled
        self.fills_rejected += result.fill_rejected
        self.redis_errors += result.redis_errors
        self.bypassed += result.bypassed

    def snapshot(self) -> dict[str, int]:
        return asdict(self)

    def take(self) -> dict[str, int]:
        """The counts so far, and start again from zero (to publish each interval once)."""
        counts = self.snapshot()
        for field in fields(self):
            setattr(self, field.name, 0)
        return counts


class CacheAside:
    """A Redis side, a DynamoDB side, a breaker: one per execution environment (or ``Cache``)."""

    def __init__(
        self,
        cache: ReaderCache,
        table: Table,
        breaker: CircuitBreaker,
        expiry: Expiry,
        counters: Counters | None = None,
    ) -> None:
        self.cache = cache
        self.table = table
        self.breaker = breaker
        self.expiry = expiry
        self.counters = counters if counters is not None else Counters()

    def lookup(self, table: str, key: Typed, cache_key: str) -> Result:
        errors = 0
        claim: Claim = None
        bypassed = not self.breaker.allow()
        if not bypassed:
            claim, errors = self._claim(cache_key)
        if isinstance(claim, Entry):
            hit = _from_entry(claim)
            if hit is not None:
                self.counters.hits += 1
                return hit
            claim = None  # unreadable payload: read DynamoDB, do not fill over it
        item, native = self._read(table, key)
        result = Result(item, DYNAMODB, redis_errors=errors, bypassed=bypassed, native=native)
        if isinstance(claim, Lease):
            self._fill(cache_key, claim, item, result)
        self.counters.add(result)
        return result

    def lookup_many(self, table: str, keys: Sequence[Typed], cache_keys: Sequence[str]) -> list[Result]:
        """``lookup`` for every key, in order; a repeated key is read once and answered each time."""
        distinct = dict(zip(cache_keys, keys, strict=True))  # a repeat's key is the same item's
        unique = list(distinct)
        results = self._lookup_unique(table, list(distinct.values()), unique)
        if len(unique) == len(cache_keys):  # no repeats: already in order
            return results
        by_key = dict(zip(unique, results, strict=True))
        return [by_key[cache_key] for cache_key in cache_keys]

    def _lookup_unique(self, table: str, keys: list[Typed], cache_keys: list[str]) -> list[Result]:
        claims: list[Claim | bytes] = [None] * len(keys)
        errors = 0
        bypassed = not self.breaker.allow()
        if not bypassed:
            claims, errors = self._claim_many(cache_keys)
        results: list[Result] = []
        reads: list[int] = []
        for i, claim in enumerate(claims):
            if type(claim) is bytes:  # a hit from get_many: the answer's payload (_from_entry, inline)
                try:
                    hit = Result(orjson.loads(claim) if claim else None, CACHE)
                except orjson.JSONDecodeError:
                    hit = None  # unreadable: read DynamoDB, do not fill over it
            else:
                hit = _from_entry(claim) if isinstance(claim, Entry) else None
            if hit is None:
                reads.append(i)
                claims[i] = claim if isinstance(claim, Lease) else None  # unreadable: do not fill over it
                hit = _PENDING
            results.append(hit)
        self.counters.hits += len(results) - len(reads)
        for i, item in zip(reads, self._read_many(table, [keys[i] for i in reads]), strict=True):
            results[i] = Result(item, DYNAMODB, redis_errors=errors, bypassed=bypassed)
        self._fill_many(cache_keys, claims, [i for i in reads if isinstance(claims[i], Lease)], results)
        for i in reads:
            self.counters.add(results[i])
        return results

    def _read(self, table: str, key: Typed) -> tuple[Typed | None, Any]:
        get_native = getattr(self.table, "get_native", None)
        if get_native is None:
            return self.table.get(table, key), None
        found: tuple[Typed | None, Any] = get_native(table, key)
        return found

    def _read_many(self, table: str, keys: list[Typed]) -> list[Typed | None]:
        if not keys:
            return []
        get_many = getattr(self.table, "get_many", None)
        if get_many is None:  # a Table without batches (test models): one key at a time
            return [self.table.get(table, key) for key in keys]
        found: list[Typed | None] = get_many(table, keys)
        return found

    def _claim(self, cache_key: str) -> tuple[Claim, int]:
        try:
            claim = self.cache.claim(cache_key)
        except RedisError:
            self.breaker.failure()
            return None, 1
        self.breaker.success()
        return claim, 0

    def _claim_many(self, cache_keys: list[str]) -> tuple[list[Claim | bytes], int]:
        """GET every key, lease the misses; hits found before a Redis error still answer.

        A hit is the payload ``get_many`` answered (bytes), or an answer entry a lease found.
        """
        claims: list[Claim | bytes] = [None] * len(cache_keys)
        try:
            claims = list(self.cache.get_many(cache_keys))
            missing = [i for i, claim in enumerate(claims) if claim is None]
            if missing:
                leased = self.cache.lease_many([cache_keys[i] for i in missing])
                for i, claim in zip(missing, leased, strict=True):
                    claims[i] = claim
        except RedisError:
            self.breaker.failure()
            return [c if isinstance(c, Entry | bytes) else None for c in claims], 1
        self.breaker.success()
        return claims, 0

    def _fill(self, cache_key: str, lease: Lease, item: Typed | None, result: Result) -> None:
        try:
            result.filled = self.cache.fill(cache_key, lease, self._payload(item), self._ttl(item))
        except RedisError:
            self.breaker.failure()
            result.redis_errors += 1
            return
        self.breaker.success()
        # Rejected: a write replaced the lease after our read began. What we read was
        # consistent when read, so it is still a correct answer; it just is not cached.
        result.fill_rejected = not result.filled

    def _fill_many(
        self, cache_keys: list[str], claims: list[Claim | bytes], leased: list[int], results: list[Result]
    ) -> None:
        if not leased:
            return
        done = [results[i] for i in leased]
        fills = []
        for i, result in zip(leased, done, strict=True):
            lease = claims[i]
            assert isinstance(lease, Lease)
            fills.append((cache_keys[i], lease, self._payload(result.item), self._ttl(result.item)))
        try:
            stored = self.cache.fill_many(fills)
        except RedisError:
            self.breaker.failure()
            for result in done:
                result.redis_errors += 1
            return
        self.breaker.success()
        for result, filled in zip(done, stored, strict=True):
            result.filled, result.fill_rejected = filled, not filled

    @staticmethod
    def _payload(item: Typed | None) -> bytes:
        return b"" if item is None else entry.encode_item(item)

    def _ttl(self, item: Typed | None) -> int:
        return self.expiry.found_s if item is not None else self.expiry.not_found_s


_PENDING = Result(None, DYNAMODB)  # a placeholder until the DynamoDB read answers


def _from_entry(found: Entry) -> Result | None:
    try:
        return Result(found.item(), CACHE)
    except orjson.JSONDecodeError:
        return None
