"""CacheAside with fake ports: Redis errors and an open breaker fall back to DynamoDB."""

from __future__ import annotations

from typing import Any

import redis

from streamcache import entry
from streamcache.circuit import CircuitBreaker
from streamcache.read.cacheaside import CACHE, DYNAMODB, CacheAside, Expiry
from streamcache.read.lookup import Claim, Lease

ITEM = {"pk": {"S": "u1"}}
KEY = {"pk": {"S": "u1"}}


class FakeCache:
    def __init__(
        self, claim: Claim = None, fill_ok: bool = True, error: bool = False, fill_error: bool = False
    ) -> None:
        self._claim, self._fill_ok, self.error, self.fill_error = claim, fill_ok, error, fill_error
        self.claims = 0
        self.fills: list[tuple[bytes, int]] = []

    def claim(self, key: str) -> Claim:
        self.claims += 1
        if self.error:
            raise redis.ConnectionError("refused")
        return self._claim

    def fill(self, key: str, lease: Lease, payload: bytes, ttl: int) -> bool:
        if self.fill_error:
            raise redis.TimeoutError("slow")
        self.fills.append((payload, ttl))
        return self._fill_ok


class FakeTable:
    def __init__(self, item: dict[str, Any] | None) -> None:
        self.item, self.calls = item, 0

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        self.calls += 1
        return self.item


def aside(cache: FakeCache, table: FakeTable, breaker: CircuitBreaker | None = None) -> CacheAside:
    return CacheAside(cache, table, breaker or CircuitBreaker(3, 5.0), Expiry(600, 60))  # type: ignore[arg-type]


def test_hit_never_reads_dynamodb() -> None:
    table = FakeTable(ITEM)
    hit = entry.decode(b"F" + b"0" * 40 + b"1764000000000" + entry.encode_item(ITEM))
    result = aside(FakeCache(hit), table).lookup("orders", KEY, "k")
    assert (result.item, result.source, table.calls) == (ITEM, CACHE, 0)


def test_granted_lease_fills_with_item_ttl_or_negative_ttl() -> None:
    cache = FakeCache(Lease(b"L" + b"0" * 40 + b"t"))
    result = aside(cache, FakeTable(ITEM)).lookup("orders", KEY, "k")
    assert (result.source, result.filled, cache.fills) == (DYNAMODB, True, [(entry.encode_item(ITEM), 600)])
    cache = FakeCache(Lease(b"L" + b"0" * 40 + b"t"))
    aside(cache, FakeTable(None)).lookup("orders", KEY, "k")
    assert cache.fills == [(b"", 60)]


def test_rejected_fill_still_answers_what_was_read() -> None:
    cache = FakeCache(Lease(b"L" + b"0" * 40 + b"t"), fill_ok=False)
    result = aside(cache, FakeTable(ITEM)).lookup("orders", KEY, "k")
    assert (result.item, result.fill_rejected) == (ITEM, True)


def test_no_lease_reads_without_filling() -> None:
    cache = FakeCache(None)
    result = aside(cache, FakeTable(ITEM)).lookup("orders", KEY, "k")
    assert (result.item, result.source, cache.fills) == (ITEM, DYNAMODB, [])


def test_unreadable_cached_payload_reads_dynamodb() -> None:
    broken = entry.decode(b"I" + b"0" * 40 + b"{not json")
    result = aside(FakeCache(broken), FakeTable(ITEM)).lookup("orders", KEY, "k")
    assert (result.item, result.source) == (ITEM, DYNAMODB)


def test_redis_errors_answer_from_dynamodb_and_open_the_breaker() -> None:
    cache, table = FakeCache(error=True), FakeTable(ITEM)
    breaker = CircuitBreaker(3, 5.0, clock=lambda: 0.0)
    reads = aside(cache, table, breaker)
    results = [reads.lookup("orders", KEY, "k") for _ in range(10)]
    assert all(r.item == ITEM and r.source == DYNAMODB for r in results)
    assert cache.claims == 3  # then the breaker skips Redis
    assert [r.redis_errors for r in results[:4]] == [1, 1, 1, 0]
    assert results[-1].bypassed


def test_fill_error_counts_and_still_answers() -> None:
    cache = FakeCache(Lease(b"L" + b"0" * 40 + b"t"), fill_error=True)
    result = aside(cache, FakeTable(ITEM)).lookup("orders", KEY, "k")
    assert (result.item, result.redis_errors, result.filled) == (ITEM, 1, False)


class FakeNativeTable(FakeTable):
    """A table that also answers in its own form (the library's boto3 values)."""

    def get_native(self, table: str, key: dict[str, Any]) -> tuple[dict[str, Any] | None, Any]:
        found = self.get(table, key)
        return found, None if found is None else {"pk": "u1"}


def test_a_miss_keeps_the_tables_own_form_of_the_item_and_fills_the_stream_form() -> None:
    cache = FakeCache(Lease(b"L" + b"0" * 40 + b"t"))
    table = FakeNativeTable(ITEM)
    result = aside(cache, table).lookup("orders", KEY, "k")
    assert (result.item, result.native, table.calls) == (ITEM, {"pk": "u1"}, 1)
    assert cache.fills == [(entry.encode_item(ITEM), 600)]
    assert aside(FakeCache(None), FakeNativeTable(None)).lookup("orders", KEY, "k").native is None
    assert aside(FakeCache(None), FakeTable(ITEM)).lookup("orders", KEY, "k").native is None


def test_a_hit_has_no_native_form() -> None:
    hit = entry.decode(b"I" + b"0" * 40 + entry.encode_item(ITEM))
    result = aside(FakeCache(hit), FakeNativeTable(ITEM)).lookup("orders", KEY, "k")
    assert (result.item, result.source, result.native) == (ITEM, CACHE, None)


class FakeBatchCache(FakeCache):
    """``get_many`` answers payloads (``entry.answer``); every miss gets a lease."""

    def __init__(self, payloads: list[bytes | None]) -> None:
        super().__init__()
        self.payloads = payloads
        self.filled: list[tuple[str, bytes]] = []

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return self.payloads

    def lease_many(self, keys: list[str]) -> list[Claim]:
        return [Lease(b"L" + b"0" * 40 + key.encode()) for key in keys]

    def fill_many(self, fills: list[tuple[str, Lease, bytes, int]]) -> list[bool]:
        self.filled += [(key, payload) for key, _lease, payload, _ttl in fills]
        return [True] * len(fills)


def test_batch_hits_answer_payloads_and_unreadable_ones_read_dynamodb_without_filling() -> None:
    other = {"pk": {"S": "u2"}}
    cache = FakeBatchCache([entry.encode_item(other), b"", b"{not json", None])
    table = FakeTable(ITEM)
    results = aside(cache, table).lookup_many("orders", [KEY] * 4, ["a", "b", "c", "d"])
    assert [(r.item, r.source) for r in results] == [
        (other, CACHE),
        (None, CACHE),  # a cached "not found"
        (ITEM, DYNAMODB),  # unreadable: read again, never filled over
        (ITEM, DYNAMODB),
    ]
    assert cache.filled == [("d", entry.encode_item(ITEM))]
    assert table.calls == 2
