"""On a cluster, a batch costs the scripts it runs and nothing more, and the masters are written side by side.

redis-py's cluster pipeline asks ``COMMAND GETKEYS`` for every EVALSHA it
routes; the protocol routes by slot itself (streamcache.routing), so the
server's own command statistics must show no such call. And the groups for
different masters are all sent before any reply is read: a master that
stalls (``DEBUG SLEEP``) delays only its own keys.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from streamcache import entry, protocol, routing
from streamcache.connection import Timeouts, redis_client
from streamcache.local import events
from streamcache.local.redis_cluster import RedisClusterNodes, admin, running_cluster
from streamcache.read.lookup import Lease, ReaderCache
from streamcache.records import Command
from streamcache.settings import Settings

SEQ = events.FIRST_SEQUENCE
PATIENT = Timeouts(connect_s=1.0, socket_s=20.0, retries=0)  # outlasts the DEBUG SLEEP below
SLEEP_S = 4


def cluster_client(url: str, timeouts: Timeouts = PATIENT) -> Any:
    return redis_client(Settings(redis_url=url, redis_cluster=True), timeouts)


def command(key: str, seq: int) -> Command:
    return Command(key, entry.ITEM, entry.pad_version(str(seq)), b'{"v": {"S": "x"}}', "image")


def node_index(cluster: RedisClusterNodes, key: str) -> int:
    return cluster.nodes.index(cluster.node_for_slot(redis.cluster.key_slot(key.encode())))


def server_calls(cluster: RedisClusterNodes, prefix: str) -> int:
    """Calls of every command whose stats name starts with ``prefix``, summed over the masters."""
    total = 0
    for node in cluster.nodes:
        with admin(node) as client:
            stats = client.info("commandstats")
        total += sum(int(s["calls"]) for name, s in stats.items() if name.startswith(prefix))
    return total


def test_a_cluster_batch_runs_its_scripts_and_asks_nothing_else(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    # GIVEN 300 keys over the 3 masters, the script already loaded by a first batch
    client = cluster_client(cluster_url)
    script = protocol.Scripts.register(client).apply
    commands = [command(f"orders-k{i}-1", SEQ + i) for i in range(300)]
    protocol.apply_commands(client, script, commands, 60)
    getkeys, evalsha = (
        server_calls(redis_cluster, "cmdstat_command"),
        server_calls(redis_cluster, "cmdstat_evalsha"),
    )
    # WHEN a newer batch for the same keys is applied
    newer = [command(c.key, SEQ + 1000 + i) for i, c in enumerate(commands)]
    outcomes = protocol.apply_commands(client, script, newer, 60)
    # THEN the servers saw exactly one EVALSHA per record, and no COMMAND (GETKEYS) at all
    assert outcomes == [protocol.APPLIED] * 300
    assert server_calls(redis_cluster, "cmdstat_evalsha") - evalsha == 300
    assert server_calls(redis_cluster, "cmdstat_command") - getkeys == 0


def test_reader_leases_and_fills_on_a_cluster_ask_nothing_else(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    cache = ReaderCache(cluster_client(cluster_url))
    cache.claim("orders-warm-1")  # connections made, slot map read
    before = server_calls(redis_cluster, "cmdstat_command")
    keys = [f"orders-r{i}-1" for i in range(30)]
    leases = [cache.claim(key) for key in keys]
    assert all(isinstance(lease, Lease) for lease in leases)
    filled = [
        cache.fill(key, lease, b'{"v": {"S": "x"}}', 60) for key, lease in zip(keys, leases, strict=True)
    ]
    assert all(filled)
    batch = [f"orders-m{i}-1" for i in range(30)]  # and the batched forms (get_items)
    claims = cache.lease_many(batch)
    assert all(isinstance(claim, Lease) for claim in claims)
    assert all(
        cache.fill_many([(k, c, b'{"v": {"S": "y"}}', 60) for k, c in zip(batch, claims, strict=True)])
    )
    assert all(found is not None for found in cache.get_many(batch))
    assert server_calls(redis_cluster, "cmdstat_command") - before == 0


def test_a_batch_read_by_node_pipelines_asks_nothing_else(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    # GIVEN 40 keys over the masters, half of them set
    client = cluster_client(cluster_url)
    keys = [f"orders-b{i}-1" for i in range(40)]
    for key in keys[::2]:
        client.set(key, key.encode())
    before = server_calls(redis_cluster, "cmdstat_command")
    # WHEN they are read the way the read side batches: one pipeline per owning master
    found: dict[int, Any] = {}
    for name, indexes in routing.by_node(client, keys).items():
        pipe = routing.node_pipeline(client, name)
        for i in indexes:
            pipe.get(keys[i])
        found.update(zip(indexes, pipe.execute(), strict=True))
    # THEN every answer is the key's own, and no COMMAND GETKEYS was asked
    assert [found[i] for i in range(40)] == [k.encode() if i % 2 == 0 else None for i, k in enumerate(keys)]
    assert server_calls(redis_cluster, "cmdstat_command") - before == 0


def test_keys_group_by_the_master_that_owns_their_slot(
    redis_cluster: RedisClusterNodes, cluster_url: str
) -> None:
    client = cluster_client(cluster_url)
    keys = [f"orders-g{i}-1" for i in range(50)] + ["{orders}-a", "{orders}-b"]
    groups = routing.by_node(client, keys)
    ports = {name: int(name.rsplit(":", 1)[1]) for name in groups}
    for name, indexes in groups.items():
        for i in indexes:
            assert redis_cluster.nodes[node_index(redis_cluster, keys[i])].port == ports[name], keys[i]
    assert sorted(i for indexes in groups.values() for i in indexes) == list(range(len(keys)))
    assert routing.by_node(object(), keys, [3, 1]) == {routing.SINGLE_NODE: [3, 1]}  # one node: one group


@pytest.fixture
def debuggable_cluster() -> Iterator[RedisClusterNodes]:
    """A cluster whose nodes accept DEBUG from this machine (Redis 7 refuses it by default)."""
    with running_cluster(extra_args=["--enable-debug-command", "local"]) as cluster:
        yield cluster


def _asleep(cluster: RedisClusterNodes, index: int) -> bool:
    """True while the node cannot answer a PING (it is inside DEBUG SLEEP)."""
    try:
        with redis.Redis(
            port=cluster.nodes[index].port, socket_timeout=0.3, socket_connect_timeout=0.3, retry=None
        ) as client:
            client.ping()
    except redis.TimeoutError:
        return True
    return False


def _put_to_sleep(cluster: RedisClusterNodes, index: int) -> threading.Thread:
    def sleep() -> None:
        with redis.Redis(port=cluster.nodes[index].port, socket_timeout=SLEEP_S + 10) as client:
            client.execute_command("DEBUG", "SLEEP", SLEEP_S)

    sleeper = threading.Thread(target=sleep, daemon=True)
    sleeper.start()
    for _ in range(50):
        if _asleep(cluster, index):
            return sleeper
    raise AssertionError("node did not go to sleep")


def test_other_masters_are_written_while_one_master_sleeps(debuggable_cluster: RedisClusterNodes) -> None:
    # GIVEN keys on every master, master 0's first (its group is sent, and read, first)
    cluster = debuggable_cluster
    client = cluster_client(cluster.url)
    script = protocol.Scripts.register(client).apply
    names = [f"orders-s{i}-1" for i in range(60)]
    names.sort(key=lambda k: node_index(cluster, k) != 0)
    protocol.apply_commands(client, script, [command(k, SEQ) for k in names], 60)  # scripts loaded
    others = {k for k in names if node_index(cluster, k) != 0}
    # WHEN master 0 sleeps and a newer batch is applied meanwhile
    sleeper = _put_to_sleep(cluster, 0)
    outcomes: list[Any] = []
    batch = threading.Thread(
        target=lambda: outcomes.extend(
            protocol.apply_commands(client, script, [command(k, SEQ + 1) for k in names], 60)
        )
    )
    batch.start()
    # THEN the other masters hold the newer records while master 0 still sleeps
    newer = entry.pad_version(str(SEQ + 1))
    while not all(_version(cluster, k) == newer for k in others):
        assert batch.is_alive(), "the batch ended before the other masters were seen written"
    assert _asleep(cluster, 0), "master 0 woke up before the other masters were written"
    batch.join()
    sleeper.join()
    assert outcomes == [protocol.APPLIED] * len(names)


def _version(cluster: RedisClusterNodes, key: str) -> str | None:
    with redis.Redis(port=cluster.nodes[node_index(cluster, key)].port) as client:
        raw = client.get(key)
    return None if raw is None else entry.decode(raw).version
