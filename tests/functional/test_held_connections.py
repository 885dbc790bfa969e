"""Connections kept between calls (streamcache.held_connections) lose nothing the pool would have caught.

The invalidator keeps one per node (``Held``), the reader and the library one
per node per thread (``PerThread``). What the pool's readiness check and
bookkeeping guard against must still be handled: a connection the server
closed between calls, a restarted server, an owner or thread that goes away.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
import redis

from streamcache import entry, protocol
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.held_connections import Held, PerThread
from streamcache.local import events
from streamcache.local.redis_server import RedisServer
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


# -- the reader's side: one connection per thread ------------------------------------------


def test_reads_keep_one_connection_per_thread(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamcache.read.lookup import ReaderCache

    client.set("k", b"T" + entry.pad_version("1").encode())
    calls = counting_get_connection(monkeypatch, client.connection_pool)
    cache = ReaderCache(client)
    for _ in range(5):
        assert cache.get("k") is not None
    assert len(calls) == 1

    def read_in_a_thread() -> None:
        for _ in range(5):
            assert cache.get("k") is not None

    import threading

    worker = threading.Thread(target=read_in_a_thread)
    worker.start()
    worker.join()
    assert len(calls) == 2  # the other thread's own connection
    gc.collect()
    assert len(client.connection_pool._in_use_connections) == 1  # the ended thread's is back in the pool


def test_a_read_after_the_server_closed_the_connection_answers(client: Any, redis_url: str) -> None:
    from streamcache.connection import READER_TIMEOUTS
    from streamcache.read.lookup import ReaderCache

    reader_client = redis_client(Settings(redis_url=redis_url), READER_TIMEOUTS)  # no retries
    value = b"T" + entry.pad_version("1").encode()
    client.set("k", value)
    cache = ReaderCache(reader_client)
    assert cache.get("k") is not None
    assert redis.Redis.from_url(redis_url).client_kill_filter(_type="normal", skipme=True) >= 1
    assert cache.get("k") == entry.decode(value)  # polled before use, as the pool does: reconnected
    reader_client.close()


def test_an_error_reply_keeps_the_connection_and_a_lost_one_is_closed(own_redis: RedisServer) -> None:
    from streamcache.held_connections import command

    client = redis_client(Settings(redis_url=own_redis.url), INVALIDATOR_TIMEOUTS)
    pool, kept = client.connection_pool, PerThread()
    with pytest.raises(redis.ResponseError):
        command(pool, kept, "EVALSHA", "0" * 40, 0)  # NOSCRIPT: the reply was read
    assert command(pool, kept, "PING") == b"PONG"
    assert len(pool._in_use_connections) == 1  # still the kept one
    own_redis.stop()
    with pytest.raises(redis.ConnectionError):
        command(pool, kept, "PING")
    assert len(pool._in_use_connections) == 0  # closed and given back
    own_redis.start()
    assert command(pool, kept, "PING") == b"PONG"
    client.close()
