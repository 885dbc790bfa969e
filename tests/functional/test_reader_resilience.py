"""Redis down or slow -> answers from DynamoDB, with the breaker bounding the cost;
and stampede protection: many readers of one cold key cost about one GetItem."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from reader import runtime as reader_runtime
from streamcache.circuit import CircuitBreaker
from streamcache.local.redis_server import RedisServer
from tests.functional.readerkit import (
    count_reads,
)

ITEM = {"pk": {"S": "u1"}, "sk": {"N": "1"}, "v": {"S": "x"}}
KEY = {"pk": "u1", "sk": 1}
FOUND = {"pk": "u1", "sk": 1, "v": "x"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def own_reader(reader_env, own_redis: RedisServer, monkeypatch, dynamodb) -> dict[str, Any]:
    """The reader on a redis-server this test may kill; a breaker on a fake clock; a claim counter."""
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    reader_runtime.reset()
    dynamodb.put_item(TableName="orders", Item=ITEM)
    reads = reader_runtime.runtime().reads
    clock = Clock()
    reads.breaker = CircuitBreaker(3, 5.0, clock=clock)
    claims: list[str] = []
    original = reads.cache.claim
    monkeypatch.setattr(reads.cache, "claim", lambda key: (claims.append(key), original(key))[1])
    return {"server": own_redis, "clock": clock, "claims": claims}


def test_redis_killed_mid_test_answers_from_dynamodb_and_the_breaker_limits_attempts(
    read, own_reader
) -> None:
    server, clock, claims = own_reader["server"], own_reader["clock"], own_reader["claims"]
    assert read(KEY)["source"] == "dynamodb"
    assert read(KEY) == {"found": True, "item": FOUND, "source": "cache"}

    server.stop()
    answers = [read(KEY) for _ in range(10)]
    assert all(a == {"found": True, "item": FOUND, "source": "dynamodb"} for a in answers)
    assert len(claims) == 2 + 3  # three failed attempts opened the breaker; seven skipped Redis

    clock.now += 5.0  # one probe per cooldown, still down
    assert read(KEY)["source"] == "dynamodb"
    assert read(KEY)["source"] == "dynamodb"
    assert len(claims) == 6

    server.start()  # same port, empty
    clock.now += 5.0
    assert read(KEY)["source"] == "dynamodb"  # the probe succeeds and fills
    assert read(KEY)["source"] == "cache"


def test_slow_redis_costs_one_timeout_per_attempt_until_the_breaker_opens(read, own_reader) -> None:
    server, claims = own_reader["server"], own_reader["claims"]
    read(KEY)
    redis.Redis.from_url(server.url).execute_command("CLIENT", "PAUSE", "3000", "ALL")
    started = time.perf_counter()
    answers = [read(KEY) for _ in range(10)]
    elapsed = time.perf_counter() - started
    assert all(a["source"] == "dynamodb" and a["item"] == FOUND for a in answers)
    assert len(claims) == 1 + 3
    # 3 timeouts of 50 ms plus ten moto reads (~0.2 s); the claim count above is the
    # exact check, this only guards against hidden retries or long timeouts.
    assert elapsed < 1.0, f"10 reads took {elapsed:.3f}s"


def test_fifty_concurrent_readers_of_a_cold_key_cost_about_one_get_item(reader_env, dynamodb) -> None:
    dynamodb.put_item(TableName="orders", Item=ITEM)
    rt = reader_runtime.runtime()
    schema = rt.schema_of("orders")
    counting = count_reads()
    start = threading.Barrier(50)
    results: list[Any] = []

    def reader() -> None:
        start.wait()
        results.append(rt.read("orders", schema, {"pk": {"S": "u1"}, "sk": {"N": "1"}}))

    threads = [threading.Thread(target=reader) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 50
    assert all(r.item == ITEM for r in results)
    from_cache = sum(r.source == "cache" for r in results)
    print(f"stampede: 50 readers, {counting.calls} GetItem calls, {from_cache} answered from the fill")
    # One reader holds the lease and fills; the others wait for it. On a loaded
    # machine a waiter's 150 ms budget can run out (it then reads without filling):
    # measured 1-5 calls on 2 busy cores. Without leases it would be 50.
    assert counting.calls <= 10
    assert from_cache >= 40
