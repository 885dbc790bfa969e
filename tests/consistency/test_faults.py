"""Faults: Redis killed (data lost or kept), slowed or frozen; DynamoDB throttling.

Each run is a seeded world on a redis-server of its own. A fault strikes
mid-run (the kill lands while deliveries and reads are in flight); while it
lasts, the world keeps writing, delivering (the real invalidator reports
what it could not apply, the schedule retries, bisects, or sends records to
the failure destination) and reading (readers fall back to DynamoDB). Then
the stream is drained as Lambda would, the failure destination redriven,
and the invariants must hold.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from botocore.exceptions import ClientError

from consistency.world import SEQUENCE_STARTS, Stats, World
from streamcache.connection import INVALIDATOR_TIMEOUTS, READER_TIMEOUTS, redis_client
from streamcache.local.model import VIEWS
from streamcache.local.redis_server import RedisServer, running_redis
from streamcache.local.schedule import Choices
from streamcache.settings import Settings

RUNS = 3
AOF = ("--appendonly", "yes", "--appendfsync", "always")


@pytest.fixture
def aof_redis() -> Iterator[RedisServer]:
    """A redis-server that keeps its data across a kill (append-only file, fsync always)."""
    with running_redis(AOF) as server:
        yield server


@pytest.fixture
def debug_redis() -> Iterator[RedisServer]:
    """A redis-server that accepts DEBUG SLEEP from a local connection."""
    with running_redis(("--enable-debug-command", "local")) as server:
        yield server


def make_world(server: RedisServer, stats: Stats, seed: int) -> World:
    rng = random.Random(seed)
    settings = Settings(redis_url=server.url)
    invalidator_client = redis_client(settings, INVALIDATOR_TIMEOUTS)
    invalidator_client.flushall()
    choices = Choices.seeded(seed)
    return World(
        invalidator_client,
        choices,
        rng.choice(VIEWS),
        rng.choice(SEQUENCE_STARTS),
        stats,
        reader_client=redis_client(settings, READER_TIMEOUTS),
    )


def finish(world: World, stats: Stats) -> None:
    world.checking = True
    world.drain()
    world.check_converged()
    stats.schedules += 1


def ticks(world: World, n: int) -> None:
    for _ in range(n):
        world.tick()


def wait_until_up(server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url, socket_timeout=1)
    for _ in range(200):
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(0.01)
    raise AssertionError("redis-server did not come back")


@pytest.mark.parametrize("seed", range(RUNS))
def test_redis_killed_and_restarted_empty(own_redis: RedisServer, stats: Stats, seed: int) -> None:
    world = make_world(own_redis, stats, seed)
    ticks(world, 40)
    threading.Timer(0.002, own_redis.stop).start()  # lands while the next steps run
    world.checking = False
    ticks(world, 10)
    own_redis.start()
    stats.fault("redis killed, data lost")
    world.forget_cache()
    ticks(world, 40)
    finish(world, stats)


@pytest.mark.parametrize("seed", range(RUNS))
def test_redis_killed_and_restarted_with_its_data(aof_redis: RedisServer, stats: Stats, seed: int) -> None:
    world = make_world(aof_redis, stats, 100 + seed)
    ticks(world, 40)
    before = world.contents()
    aof_redis.stop()
    aof_redis.start()
    stats.fault("redis killed, data kept (AOF)")
    assert world.contents() == before  # the append-only file kept every applied write
    world.checking = False
    threading.Timer(0.002, aof_redis.restart).start()
    ticks(world, 10)
    wait_until_up(aof_redis)
    stats.fault("redis killed, data kept (AOF)")
    world.checking = True
    ticks(world, 40)
    finish(world, stats)


@pytest.mark.parametrize("seed", range(RUNS))
def test_redis_slowed_by_debug_sleep(debug_redis: RedisServer, stats: Stats, seed: int) -> None:
    world = make_world(debug_redis, stats, 200 + seed)
    ticks(world, 30)
    other = redis.Redis.from_url(debug_redis.url, socket_timeout=5)
    slept: list[object] = []
    sleeper = threading.Thread(target=lambda: slept.append(other.execute_command("DEBUG", "SLEEP", "0.3")))
    sleeper.start()
    time.sleep(0.01)  # let the sleep begin
    stats.fault("redis DEBUG SLEEP 0.3 s")
    ticks(world, 20)  # readers time out (50 ms) and answer from DynamoDB
    sleeper.join()
    assert slept == [b"OK"]
    ticks(world, 30)
    finish(world, stats)


@pytest.mark.parametrize("seed", range(RUNS))
def test_redis_frozen_with_sigstop(own_redis: RedisServer, stats: Stats, seed: int) -> None:
    assert own_redis.process is not None
    pid = own_redis.process.pid
    world = make_world(own_redis, stats, 300 + seed)
    ticks(world, 30)
    os.kill(pid, signal.SIGSTOP)
    thaw = threading.Timer(0.4, os.kill, args=(pid, signal.SIGCONT))  # < the invalidator's 2 s timeout
    thaw.start()
    stats.fault("redis SIGSTOP 0.4 s")
    try:
        ticks(world, 20)
    finally:
        thaw.join()
    ticks(world, 30)
    finish(world, stats)


@pytest.mark.parametrize("seed", range(RUNS))
def test_dynamodb_throttling(redis_server: RedisServer, stats: Stats, seed: int) -> None:
    world = make_world(redis_server, stats, 400 + seed)
    rng = random.Random(seed)

    def throttle() -> None:
        if rng.random() < 0.5:
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, "GetItem")

    ticks(world, 20)
    world.table.fail = throttle
    stats.fault("dynamodb throttling (50% of GetItem, 40 steps)")
    ticks(world, 40)
    world.table.fail = None
    ticks(world, 20)
    finish(world, stats)
