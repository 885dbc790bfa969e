"""The invalidator keeps one connection per node between batches (node_pipeline.Held) and loses nothing by it.

Held connections skip the pool's per-call bookkeeping; what the pool's
readiness check would have caught must still be handled: a connection the
server closed between batches, a restarted server, an owner that goes away.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
import redis

from streamcache import entry, protocol
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.local import events
from streamcache.local.redis_server import RedisServer
from streamcache.node_pipeline import Held
from streamcache.records import Command
from streamcache.settings import Settings

SEQ = events.FIRST_SEQUENCE


def command(key: str, seq: int) -> Command:
    return Command(key, entry.ITEM, entry.pad_version(str(seq)), b'{"v": {"S": "x"}}', "image")


def apply(client: Any, scripts: protocol.Scripts, held: Any, seq: int, keys: int = 3) -> list[Any]:
    commands = [command(f"k{i}", seq) for i in range(keys)]
    return protocol.apply_commands(client, scripts.apply, commands, 600, connections=held)


@pytest.fixture
def client(redis_url: str) -> Any:
    return redis_client(Settings(redis_url=redis_url), INVALIDATOR_TIMEOUTS)


def counting_get_connection(monkeypatch: pytest.MonkeyPatch, pool: Any) -> list[int]:
    calls: list[int] = []
    real = pool.get_connection

    def get_connection(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", get_connection)
    return calls


def test_one_connection_is_taken_once_and_kept(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = protocol.Scripts.register(client)
    client.script_load(scripts.apply.script)  # no NOSCRIPT reload (a borrowed connection) below
    calls = counting_get_connection(monkeypatch, client.connection_pool)
    held = Held()
    for i in range(5):
        assert apply(client, scripts, held, SEQ + i) == [protocol.APPLIED] * 3
    assert len(calls) == 1
    for i in range(5):  # the default borrows and gives back every time
        apply(client, scripts, protocol.BORROWED, SEQ + 10 + i)
    assert len(calls) == 6


def test_a_connection_the_server_closed_between_batches_is_replaced(client: Any, redis_url: str) -> None:
    scripts = protocol.Scripts.register(client)
    held = Held()
    assert apply(client, scripts, held, SEQ) == [protocol.APPLIED] * 3
    admin = redis.Redis.from_url(redis_url)
    killed = admin.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    assert apply(client, scripts, held, SEQ + 1) == [protocol.APPLIED] * 3
    assert entry.decode(admin.get("k0")).version == entry.pad_version(str(SEQ + 1))


def test_a_restarted_server_fails_one_batch_at_most(own_redis: RedisServer) -> None:
    client = redis_client(Settings(redis_url=own_redis.url), INVALIDATOR_TIMEOUTS)
    scripts = protocol.Scripts.register(client)
    held = Held()
    assert apply(client, scripts, held, SEQ) == [protocol.APPLIED] * 3
    own_redis.stop()
    down = apply(client, scripts, held, SEQ + 1)
    assert all(isinstance(o, redis.ConnectionError) for o in down)
    own_redis.start()  # data gone with the process; the script is reloaded on NOSCRIPT
    assert apply(client, scripts, held, SEQ + 2) == [protocol.APPLIED] * 3
    client.close()


def test_an_owner_that_goes_away_gives_its_connection_back(client: Any) -> None:
    scripts = protocol.Scripts.register(client)
    held = Held()
    apply(client, scripts, held, SEQ)
    pool = client.connection_pool
    assert len(pool._in_use_connections) == 1
    del held
    gc.collect()
    assert len(pool._in_use_connections) == 0
