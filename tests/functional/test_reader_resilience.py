"""Redis down or slow -> answers from DynamoDB, with the breaker bounding the cost;
and stampede protection: many readers of one cold key cost one GetItem."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
from redis.connection import AbstractConnection

from reader import runtime as reader_runtime
from streamcache.circuit import CircuitBreaker
from streamcache.connection import READER_TIMEOUTS, redis_client
from streamcache.local.redis_server import RedisServer
from streamcache.read.lookup import Lease, ReaderCache
from streamcache.settings import Settings
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


class SentCommands:
    """Counts commands sent to one server by any redis-py connection (retries included)."""

    def __init__(self, port: int) -> None:
        self.port, self.names = port, []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = AbstractConnection.send_command

        def send(conn: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            if getattr(conn, "port", None) == self.port:
                self.names.append(str(args[0]))
            original(conn, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "send_command", send)


PAUSE_MS = 5_000  # never lifted: Redis 7.0 pauses CLIENT UNPAUSE too; the server dies with the test


def test_slow_redis_costs_one_timeout_per_attempt_until_the_breaker_opens(
    read, own_reader, monkeypatch
) -> None:
    server, claims = own_reader["server"], own_reader["claims"]
    read(KEY)
    sent = SentCommands(server.port)
    redis.Redis.from_url(server.url).execute_command("CLIENT", "PAUSE", str(PAUSE_MS), "ALL")
    sent.install(monkeypatch)
    started = time.monotonic()
    answers = [read(KEY) for _ in range(10)]
    elapsed = time.monotonic() - started
    assert all(a["source"] == "dynamodb" and a["item"] == FOUND for a in answers)
    assert len(claims) == 1 + 3  # three attempts opened the breaker
    # One command per attempt, no hidden retry: the GET, then (its connection dropped at the
    # timeout) the handshake of a new connection, which times out too.
    assert len(sent.names) == 3, sent.names
    assert sent.names[0] == "GET"
    # Each attempt gives up after its 50 ms timeout (about 0.4 s for all ten reads). A read
    # that waited for the paused server would take the whole pause: the bound is the pause.
    assert elapsed < PAUSE_MS / 1000, f"10 reads took {elapsed:.1f}s: a read waited out the pause"


class GatedCache(ReaderCache):
    """The reader's cache with waits that end when the fill has landed, on per-thread virtual time.

    A waiter's budget then counts only the waits it asked for, not the time a busy
    machine takes to schedule the filler: what is measured is the protocol, not the load.
    """

    def __init__(self, client: Any) -> None:
        self.filled = threading.Event()
        self._time = threading.local()
        super().__init__(client, sleep=self._wait, clock=self._now)

    def _now(self) -> float:
        return float(getattr(self._time, "now", 0.0))

    def _wait(self, seconds: float) -> None:
        assert self.filled.wait(30), "the lease holder never filled"
        self._time.now = self._now() + seconds

    def fill(self, key: str, lease: Lease, payload: bytes, ttl_seconds: int) -> bool:
        done = super().fill(key, lease, payload, ttl_seconds)
        self.filled.set()
        return done


def test_fifty_concurrent_readers_of_a_cold_key_cost_one_get_item(reader_env, dynamodb) -> None:
    dynamodb.put_item(TableName="orders", Item=ITEM)
    rt = reader_runtime.runtime()
    schema = rt.schema_of("orders")
    gated = GatedCache(redis_client(Settings.from_env(), READER_TIMEOUTS))
    rt.reads.cache = gated
    counting = count_reads()
    start = threading.Barrier(50)
    results: list[Any] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            start.wait()
            results.append(rt.read("orders", schema, {"pk": {"S": "u1"}, "sk": {"N": "1"}}))
        except BaseException as err:  # handed to the assertions below
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 50
    assert all(r.item == ITEM for r in results)
    # One reader holds the lease, reads DynamoDB and fills; the 49 others wait for its
    # fill (or arrive after it). Without leases it would be 50 GetItem calls.
    assert counting.calls == 1
    assert sum(r.filled for r in results) == 1
    assert sum(r.source == "cache" for r in results) == 49
