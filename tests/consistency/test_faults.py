"""Faults: Redis killed (data lost or kept), slowed or frozen; DynamoDB throttling.

Each run is a seeded world on a redis-server of its own. Every fault strikes
at a deterministic point of the schedule: between two steps (``World.at_step``)
or, for the kills, inside a reader's lookup between its DynamoDB read and its
fill (``ModelTable.after_read``). While the fault lasts the world keeps
writing, delivering (the real invalidator reports what it could not apply;
the schedule retries, bisects, or sends records to the failure destination)
and reading (readers fall back to DynamoDB). Then the stream is drained as
Lambda would, the failure destination redriven, and the invariants must hold.

A fault is counted in the suite's summary only once the test has seen it
happen: the server's run id changed, its data is gone (or, with an
append-only file, kept), and the invalidator and the reader both met the
error while it lasted.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis
from botocore.exceptions import ClientError
from redis.backoff import NoBackoff
from redis.retry import Retry

from consistency.world import SEQUENCE_STARTS, Stats, World
from streamcache.connection import READER_TIMEOUTS, Timeouts, redis_client
from streamcache.local.model import VIEWS
from streamcache.local.redis_server import RedisServer, running_redis
from streamcache.local.schedule import Choices
from streamcache.settings import Settings

RUNS = 3
AOF = ("--appendonly", "yes", "--appendfsync", "always")
# The protocol's safety does not depend on how long the invalidator waits, only that a
# wait can expire; a short budget keeps a frozen server from costing 3 x 2 s per delivery.
FAULT_TIMEOUTS = Timeouts(connect_s=0.1, socket_s=0.1, retries=1)
# Forced steps while a fault lasts, until both clients have met it; the fault lasts until
# the test lifts it, so only a broken client (or a fault that never struck) runs out.
TRIES = 50
SLEEP_S = 1.0  # DEBUG SLEEP: 20 reader timeouts (50 ms) long


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
    invalidator_client = redis_client(settings, FAULT_TIMEOUTS)
    invalidator_client.flushall()
    return World(
        invalidator_client,
        Choices.seeded(seed),
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


def run_id(server: RedisServer) -> str:
    with server.client(socket_timeout=5) as client:
        return str(client.info("server")["run_id"])


def keys_held(server: RedisServer) -> int:
    with server.client(socket_timeout=5) as client:
        return int(client.dbsize())


def until(seen: Callable[[], bool], step: Callable[[], object], what: str) -> None:
    """Run ``step`` until ``seen()``; the fault is still in place, so it must be met."""
    for _ in range(TRIES):
        if seen():
            return
        step()
    raise AssertionError(f"the fault was in place for {TRIES} forced steps, yet {what}")


def write_and_deliver(world: World) -> None:
    world.write()
    world.deliver()


def felt_by_both(world: World) -> None:
    """While the fault lasts: the invalidator reports (or raises) and a reader falls back."""
    failures, fallbacks = world.handler_failures, world.read_fallbacks
    until(lambda: world.handler_failures > failures, lambda: write_and_deliver(world), "no delivery failed")
    until(lambda: world.read_fallbacks > fallbacks, world.read, "no read met a Redis error")


def strike(world: World, fault: Callable[[], None], mid_read: bool) -> None:
    """Run ``fault`` between two steps, or inside a reader's lookup (after DynamoDB, before the fill)."""
    world.checking = False  # the checker reads Redis too
    if not mid_read:
        fault()
        return
    world.table.after_read = fault
    fallbacks = world.read_fallbacks
    world.read_unwritten()  # a miss: it claims a lease, reads DynamoDB (the fault), then fills
    assert world.table.after_read is None, "the read never reached DynamoDB"
    # The reader held a lease when Redis went: its fill met the error, nothing was filled.
    assert world.read_fallbacks > fallbacks, world.describe()


@pytest.mark.parametrize("seed", range(RUNS))
def test_redis_killed_and_restarted_empty(own_redis: RedisServer, stats: Stats, seed: int) -> None:
    world = make_world(own_redis, stats, seed)
    ticks(world, 40)
    before, held = run_id(own_redis), keys_held(own_redis)
    assert held > 0, "nothing cached before the kill: there is no data to lose"
    strike(world, own_redis.stop, mid_read=seed % 2 == 1)
    felt_by_both(world)
    ticks(world, 10)
    own_redis.start()
    assert run_id(own_redis) != before  # a new process
    assert keys_held(own_redis) == 0  # and the data is gone
    stats.fault("redis killed, data lost")
    world.forget_cache()
    world.checking = True
    ticks(world, 40)
    finish(world, stats)


@pytest.mark.parametrize("seed", range(RUNS))
def test_redis_killed_and_restarted_with_its_data(aof_redis: RedisServer, stats: Stats, seed: int) -> None:
    world = make_world(aof_redis, stats, 100 + seed)
    ticks(world, 40)
    kept = world.contents()
    assert any(v is not None for v in kept.values()), "nothing cached before the kill"
    before = run_id(aof_redis)
    aof_redis.restart()
    assert run_id(aof_redis) != before
    assert world.contents() == kept  # the append-only file kept every applied write
    stats.fault("redis killed, data kept (AOF)")

    def kill_mid_schedule() -> None:
        nonlocal kept, before
        kept, before = world.contents(), run_id(aof_redis)
        aof_redis.stop()

    world.at_step[world.steps + 3] = lambda: strike(world, kill_mid_schedule, mid_read=seed % 2 == 1)
    ticks(world, 4)
    assert aof_redis.process is None, "the hook did not run"
    felt_by_both(world)
    aof_redis.start()
    assert run_id(aof_redis) != before
    assert world.contents() == kept  # nothing written while it was down, nothing lost
    stats.fault("redis killed, data kept (AOF)")
    world.checking = True
    ticks(world, 40)
    finish(world, stats)


@contextmanager
def debug_sleep(server: RedisServer, seconds: float) -> Iterator[threading.Thread]:
    """DEBUG SLEEP on a connection of its own; yields once the server has stopped answering.

    The sleeper's reply (or error) is checked when the block ends: nothing raised
    in the thread is lost.
    """
    replies: list[object] = []

    def sleep() -> None:
        with server.client(socket_timeout=seconds + 10) as client:
            try:
                replies.append(client.execute_command("DEBUG", "SLEEP", str(seconds)))
            except redis.RedisError as err:  # handed to the test below
                replies.append(err)

    sleeper = threading.Thread(target=sleep)
    sleeper.start()
    try:
        assert wait_unresponsive(server, sleeper), f"DEBUG SLEEP never took hold: {replies}"
        yield sleeper
    finally:
        sleeper.join()
    assert replies == [b"OK"], replies


def wait_unresponsive(server: RedisServer, sleeper: threading.Thread) -> bool:
    """Until a PING times out (True: the sleep has begun), or the sleeper is done (False).

    No guess at how long the sleep takes to start.
    """
    # No retries: redis-py would otherwise retry the timed-out PING until the sleep ends.
    with server.client(socket_timeout=0.1, retry=Retry(NoBackoff(), 0)) as probe:
        while sleeper.is_alive():
            try:
                probe.ping()
            except redis.TimeoutError:
                return True
    return False


@pytest.mark.parametrize("seed", range(RUNS))
def test_redis_slowed_by_debug_sleep(debug_redis: RedisServer, stats: Stats, seed: int) -> None:
    world = make_world(debug_redis, stats, 200 + seed)
    ticks(world, 30)
    world.checking = False  # the checker's reads would time out too
    with debug_sleep(debug_redis, SLEEP_S) as sleeper:
        fallbacks = world.read_fallbacks
        # Readers time out (50 ms) and answer from DynamoDB; only while the server sleeps.
        until(lambda: world.read_fallbacks > fallbacks or not sleeper.is_alive(), world.read, "")
        assert world.read_fallbacks > fallbacks, "the sleep ended before a read met it"
        stats.fault(f"redis DEBUG SLEEP {SLEEP_S} s")
        ticks(world, 10)
    world.checking = True
    ticks(world, 30)
    finish(world, stats)


@pytest.mark.parametrize("seed", range(RUNS))
def test_redis_frozen_with_sigstop(own_redis: RedisServer, stats: Stats, seed: int) -> None:
    assert own_redis.process is not None
    pid = own_redis.process.pid
    world = make_world(own_redis, stats, 300 + seed)
    world.at_step[30] = lambda: strike(world, lambda: os.kill(pid, signal.SIGSTOP), mid_read=False)
    ticks(world, 31)
    try:
        assert world.checking is False, "the hook did not run"
        # Commands sent now wait in the socket: the frozen server runs them once thawed,
        # after the invalidator has reported them failed.
        felt_by_both(world)
        ticks(world, 4)
    finally:
        os.kill(pid, signal.SIGCONT)
    stats.fault("redis frozen (SIGSTOP)")
    world.checking = True
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
    errors = world.read_errors
    until(lambda: world.read_errors > errors, world.read_unwritten, "no read was throttled")
    ticks(world, 40)
    world.table.fail = None
    stats.fault("dynamodb throttling (50% of GetItem)")
    ticks(world, 20)
    finish(world, stats)
