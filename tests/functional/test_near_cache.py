"""The near cache against a real redis-server: invalidations, races, flushes, lost and silent connections.

The clock is injected: "later than the bound" is a number, not a sleep, so
each test decides exactly when a confirmation is due.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from functional.tcp_proxy import silent_proxy
from streamcache.local.redis_server import RedisServer, running_redis
from streamcache.read.near import ClusterNodes, NearCache, SingleNode

BOUND_S = 0.1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url, socket_timeout=0.5)
    yield c
    c.close()


def near_for(client: redis.Redis, clock: Clock, **options: float) -> NearCache:
    return NearCache(SingleNode(client), max_staleness_s=BOUND_S, clock=clock, **options)  # type: ignore[arg-type]


def read(near: NearCache, client: redis.Redis, key: str) -> bytes | None:
    """What a reader does: near cache, else GET and keep it."""
    found = near.get(key)
    if found is not None:
        return found
    ticket = near.begin(key)
    raw = client.get(key)
    if ticket is not None:
        if raw is None:
            near.abandon(ticket)
        else:
            near.store(ticket, raw)
    return raw


def test_repeated_reads_are_served_from_memory(client: redis.Redis, clock: Clock) -> None:
    near = near_for(client, clock)
    client.set("k", b"v1")
    assert read(near, client, "k") == b"v1"
    assert near.get("k") == b"v1"
    assert near.counters.hits == 1
    near.close()


def test_a_write_is_never_served_after_the_bound(client: redis.Redis, clock: Clock) -> None:
    # GIVEN a value in the near cache
    near = near_for(client, clock)
    client.set("k", b"v1")
    read(near, client, "k")
    # WHEN another client writes it and the bound passes
    client.set("k", b"v2")
    clock.advance(BOUND_S * 1.5)
    # THEN the confirmation round trip brings the invalidation first: the old value is gone
    assert near.get("k") is None
    assert near.counters.invalidations >= 1
    assert near.counters.round_trips == 1
    assert read(near, client, "k") == b"v2"
    near.close()


def test_without_a_write_the_value_survives_a_confirmation(client: redis.Redis, clock: Clock) -> None:
    near = near_for(client, clock)
    client.set("k", b"v1")
    read(near, client, "k")
    client.set("unrelated-but-tracked", b"x")
    clock.advance(BOUND_S * 1.5)
    assert near.get("k") == b"v1"
    assert near.counters.round_trips == 1
    near.close()


def test_steady_reads_send_confirmations_ahead_without_waiting(client: redis.Redis, clock: Clock) -> None:
    near = near_for(client, clock)
    client.set("k", b"v1")
    read(near, client, "k")
    for _ in range(20):
        clock.advance(BOUND_S / 4)
        assert near.get("k") == b"v1"
        wait_for_replies(near)  # the network's part: a busy machine may take a while to answer
    # A PING went out at half the bound and its reply was read on a later read.
    assert near.counters.round_trips == 0
    near.close()


def wait_for_replies(near: NearCache) -> None:
    """Block until Redis has answered every PING sent ahead (white-box: the test's clock is fake)."""
    for tracker in near._trackers.values():
        while tracker._pings:
            assert tracker._live().can_read(timeout=5), "Redis did not answer a PING in 5 s"
            tracker.pump()


def test_an_invalidation_racing_the_read_refuses_the_store(client: redis.Redis, clock: Clock) -> None:
    near = near_for(client, clock)
    client.set("warm", b"w")
    read(near, client, "warm")
    client.set("k", b"old")
    # GIVEN a read of k that began, and got the old value
    ticket = near.begin("k")
    assert ticket is not None
    stale = client.get("k")
    # WHEN a write lands and its invalidation is processed before the store
    client.set("k", b"new")
    clock.advance(BOUND_S * 1.5)
    near.get("warm")  # the confirmation reads the invalidation of k
    # THEN the old value is not kept
    assert near.store(ticket, stale) is False  # type: ignore[arg-type]
    assert near.get("k") is None
    assert near.counters.stores_refused == 1
    near.close()


def test_a_read_with_no_racing_write_is_kept(client: redis.Redis, clock: Clock) -> None:
    near = near_for(client, clock)
    client.set("warm", b"w")
    read(near, client, "warm")
    client.set("k", b"v")
    clock.advance(BOUND_S * 1.5)
    near.get("warm")  # the SET's own invalidation is read before the read begins
    ticket = near.begin("k")
    assert ticket is not None
    value = client.get("k")
    clock.advance(BOUND_S * 1.5)
    near.get("warm")
    assert near.store(ticket, value) is True  # type: ignore[arg-type]
    assert near.get("k") == b"v"
    near.close()


def test_flushall_empties_the_near_cache(client: redis.Redis, clock: Clock) -> None:
    near = near_for(client, clock)
    for key in ("a", "b", "c"):
        client.set(key, key)
        read(near, client, key)
    client.flushall()
    clock.advance(BOUND_S * 1.5)
    assert near.get("a") is None
    assert len(near) == 0
    near.close()


def test_a_killed_tracking_connection_empties_it_and_tracking_comes_back(
    client: redis.Redis, clock: Clock
) -> None:
    near = near_for(client, clock, retry_after_s=1.0)
    client.set("k", b"v")
    read(near, client, "k")
    killed = client.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    clock.advance(BOUND_S * 1.5)
    assert near.get("k") is None
    assert near.counters.resets == 1
    assert len(near) == 0
    # Within the retry pause nothing is stored; after it tracking restarts.
    assert near.begin("k") is None
    clock.advance(1.5)
    assert read(near, client, "k") == b"v"
    assert near.get("k") == b"v"
    near.close()


def test_a_silent_connection_stops_being_trusted_at_the_bound(
    redis_server: RedisServer, clock: Clock
) -> None:
    direct = redis.Redis(port=redis_server.port)
    direct.flushall()
    with silent_proxy(redis_server.port) as proxy:
        via_proxy = redis.Redis(port=proxy.port, socket_timeout=0.3)
        near = near_for(via_proxy, clock)
        direct.set("k", b"v1")
        read(near, via_proxy, "k")
        # GIVEN the tracking connection goes silent (no error, no close) and a write lands
        proxy.go_silent()
        direct.set("k", b"v2")
        # Within the bound the value is still served: that is the promise's allowance.
        clock.advance(BOUND_S * 0.9)
        assert near.get("k") == b"v1"
        # Beyond it, the confirmation never comes back: nothing is served, the cache is emptied.
        clock.advance(BOUND_S * 0.2)
        assert near.get("k") is None
        assert near.counters.resets == 1
        assert len(near) == 0
        near.close()
        via_proxy.close()
    direct.close()


def test_after_a_freeze_the_first_read_pays_one_round_trip(client: redis.Redis, clock: Clock) -> None:
    near = near_for(client, clock)
    client.set("k", b"v1")
    client.set("j", b"j1")
    read(near, client, "k")
    read(near, client, "j")
    # A frozen Lambda environment: ten minutes with no reads, one write meanwhile.
    client.set("k", b"v2")
    clock.advance(600)
    assert near.get("j") == b"j1"
    assert near.counters.round_trips == 1
    assert near.get("k") is None  # the write's invalidation arrived before the PING's reply
    near.close()


def test_memory_is_bounded_by_items_and_bytes(client: redis.Redis, clock: Clock) -> None:
    # Written before tracking starts: no invalidation of their own writes is on its way.
    client.mset({f"k{i}": b"v" for i in range(5)} | {f"s{i}": b"x" * 300 for i in range(20)})
    client.set("big", b"x" * 1200)
    near = near_for(client, clock, max_items=3)
    for i in range(5):
        read(near, client, f"k{i}")
    assert len(near) == 3
    assert near.get("k0") is None
    assert near.get("k4") == b"v"
    near.close()
    small = near_for(client, clock, max_bytes=4000)
    read(small, client, "big")  # over a quarter of the budget: not kept
    assert small.get("big") is None
    for i in range(20):
        read(small, client, f"s{i}")
    assert 0 < len(small) < 20
    assert small.get("s19") == b"x" * 300
    small.close()


def test_a_server_without_client_tracking_turns_it_off_with_one_log_line(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with running_redis(extra_args=["--rename-command", "CLIENT", ""]) as server:
        client = redis.Redis(port=server.port)
        near = near_for(client, clock)
        with caplog.at_level(logging.WARNING):
            assert near.begin("k") is None
            assert near.begin("k") is None
        assert not near.enabled
        assert len([r for r in caplog.records if "does not support client tracking" in r.message]) == 1
        client.close()


def test_cluster_writes_on_every_primary_are_tracked(cluster_url: str, clock: Clock) -> None:
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url(cluster_url)
    near = NearCache(ClusterNodes(client), max_staleness_s=BOUND_S, clock=clock)
    keys = [f"key{i}" for i in range(30)]  # spread over the three primaries' slots
    assert len({client.get_node_from_key(k).name for k in keys}) == 3
    for key in keys:
        client.set(key, b"v1")
        read(near, client, key)  # type: ignore[arg-type]
    for key in keys:
        client.set(key, b"v2")
    clock.advance(BOUND_S * 1.5)
    assert all(near.get(key) is None for key in keys)
    assert near.counters.round_trips == 1
    near.close()
    client.close()


def test_a_change_to_the_group_key_drops_its_members(client: redis.Redis, clock: Clock) -> None:
    """A query page is kept with its partition's marker as group: a moved marker drops the page."""
    near = near_for(client, clock)
    client.set("marker", b"m1")
    client.set("page", b"m1|rows")
    ticket = near.begin("page", group="marker")
    assert ticket is not None
    assert near.store(ticket, client.get("page"))  # type: ignore[arg-type]
    assert near.get("page") == b"m1|rows"
    client.set("marker", b"m2")  # the invalidator moved the marker; the page key itself is untouched
    clock.advance(BOUND_S * 1.5)
    assert near.get("page") is None
    near.close()


def test_a_group_change_racing_the_read_refuses_the_store(client: redis.Redis, clock: Clock) -> None:
    near = near_for(client, clock)
    client.set("warm", b"w")
    read(near, client, "warm")
    client.set("page", b"m1|rows")
    ticket = near.begin("page", group="marker")
    assert ticket is not None
    page = client.get("page")
    client.set("marker", b"m2")
    clock.advance(BOUND_S * 1.5)
    near.get("warm")  # the confirmation reads the marker's invalidation
    assert near.store(ticket, page) is False  # type: ignore[arg-type]
    near.close()


def test_a_slot_moving_to_another_master_keeps_the_near_cache_coherent(
    cluster_url: str, redis_cluster: Any, clock: Clock
) -> None:
    """MIGRATE deletes the key on the old master (an invalidation); writes on the new one are tracked too."""
    from redis.cluster import RedisCluster, key_slot

    from functional.test_cluster import _move_slot

    client = RedisCluster.from_url(cluster_url)
    near = NearCache(ClusterNodes(client), max_staleness_s=BOUND_S, clock=clock)
    key = "orders-near-moving"
    client.set(key, b"v1")
    read(near, client, key)  # type: ignore[arg-type]
    assert near.get(key) == b"v1"
    slot = key_slot(key.encode())
    source = redis_cluster.node_for_slot(slot)
    target = next(n for n in redis_cluster.nodes if n is not source)
    _move_slot(redis_cluster, slot, source, target)
    try:
        clock.advance(BOUND_S * 1.5)
        assert near.get(key) is None  # the move itself invalidated it
        with redis.Redis(port=target.port) as new_owner:
            assert new_owner.get(key) == b"v1"
            near.confirm_now()
            assert read(near, client, key) == b"v1"  # type: ignore[arg-type]
            new_owner.set(key, b"v2")  # a write on the slot's new master
        clock.advance(BOUND_S * 1.5)
        assert near.get(key) is None
    finally:
        _move_slot(redis_cluster, slot, target, source)
        near.close()
        client.close()


def test_a_lease_first_claim_keeps_its_answer_in_memory_like_a_get(client: redis.Redis, clock: Clock) -> None:
    from streamcache import entry
    from streamcache.read.lookup import Lease, ReaderCache

    near = near_for(client, clock)
    cache = ReaderCache(client, near=near)
    cache.miss_share = 1.0  # most recent claims missed: lease.lua runs first, no GET
    item = b"I" + entry.pad_version("1").encode() + b'{"a":{"S":"b"}}'
    client.set("k", item)
    claim = cache.claim("k")
    assert isinstance(claim, entry.Entry) and claim.kind == entry.ITEM
    assert near.get("k") == item  # kept, as a GET's answer is
    hits = near.counters.hits
    assert cache.claim("k") == claim and near.counters.hits == hits + 1  # then served from memory
    assert isinstance(cache.claim("absent"), Lease) and near.get("absent") is None  # a lease is not kept
    # A write racing the lease's answer: the answer is not served once Redis confirms.
    real_evalsha = cache._evalsha
    newer = b"I" + entry.pad_version("2").encode() + b'{"a":{"S":"c"}}'
    client.set("r", item)

    def evalsha_then_a_write(*args: Any) -> Any:
        answered = real_evalsha(*args)
        redis.Redis(connection_pool=client.connection_pool).set("r", newer)
        return answered

    cache._evalsha = evalsha_then_a_write  # type: ignore[method-assign]
    assert cache.claim("r") == entry.decode(item)  # consistent when read
    cache._evalsha = real_evalsha  # type: ignore[method-assign]
    assert near.confirm_now()
    assert near.get("r") is None  # the invalidation reached the near cache: the old answer is gone
    near.close()


def test_a_claim_asks_the_near_cache_once(client: redis.Redis, clock: Clock) -> None:
    from streamcache import entry
    from streamcache.read.lookup import ReaderCache

    client.set("k", b"T" + entry.pad_version("1").encode())
    for miss_share in (0.0, 1.0):  # GET first, then lease first
        near = near_for(client, clock)
        cache = ReaderCache(client, near=near)
        cache.miss_share = miss_share
        assert cache.claim("k") is not None
        assert near.counters.misses == 1 and near.counters.hits == 0
        assert cache.claim("k") is not None
        assert near.counters.misses == 1 and near.counters.hits == 1  # kept, then served from memory
        near.close()
