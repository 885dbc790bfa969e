"""Cluster mode (REDIS_CLUSTER=true) against a real local 3-master cluster.

The everyday invalidator behaviour runs on the cluster through the `any_redis`
parametrization of test_invalidator.py; here: what only a cluster can do -
a master dying mid-batch, scripts missing on one node, slots moving.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

import invalidator.handler as invalidator_handler
from streamcache import connection, entry, protocol, routing
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.local import events
from streamcache.local.redis_cluster import RedisClusterNodes, running_cluster
from streamcache.local.redis_server import running_redis
from streamcache.records import Command
from streamcache.settings import Settings

SEQ = events.FIRST_SEQUENCE
KEY_SCHEMA = '{"orders": ["pk", "sk"]}'


@pytest.fixture
def own_cluster() -> Iterator[RedisClusterNodes]:
    """A cluster for this test alone: tests that kill a master use this one."""
    with running_cluster() as cluster:
        yield cluster


def cluster_client(url: str) -> Any:
    return redis_client(Settings(redis_url=url, redis_cluster=True), INVALIDATOR_TIMEOUTS)


def command(key: str, seq: int) -> Command:
    return Command(key, entry.ITEM, entry.pad_version(str(seq)), b'{"v": {"S": "x"}}', "image")


def node_index(cluster: RedisClusterNodes, key: str) -> int:
    return cluster.nodes.index(cluster.node_for_slot(redis.cluster.key_slot(key.encode())))


def direct_get(cluster: RedisClusterNodes, index: int, key: str) -> bytes | None:
    with redis.Redis(port=cluster.nodes[index].port) as node:
        return node.get(key)


def write(pk: str, seq: int) -> dict[str, Any]:
    keys = {"pk": {"S": pk}, "sk": {"N": "1"}}
    return events.record("orders", "INSERT", keys, seq, new=events.item(keys, v={"S": pk}))


def test_keys_spread_over_every_master(cluster_url: str, redis_cluster: RedisClusterNodes) -> None:
    client = cluster_client(cluster_url)
    script = protocol.Scripts.register(client).apply
    commands = [command(f"orders-k{i}-1", SEQ + i) for i in range(30)]
    assert protocol.apply_commands(client, script, commands, 60) == [protocol.APPLIED] * 30
    per_node = [len(redis.Redis(port=n.port).keys()) for n in redis_cluster.nodes]
    assert all(count > 0 for count in per_node) and sum(per_node) == 30


def test_master_killed_mid_batch_fails_exactly_its_unsent_commands(
    monkeypatch: pytest.MonkeyPatch, own_cluster: RedisClusterNodes
) -> None:
    # GIVEN 60 keys over 3 masters, in chunks of 10, and master 2 dies before chunk 3
    monkeypatch.setattr(protocol, "CHUNK_SIZE", 10)
    client = cluster_client(own_cluster.url)
    script = protocol.Scripts.register(client).apply
    commands = [command(f"orders-k{i}-1", SEQ + i) for i in range(60)]
    chunk_of_first_group_call = _kill_before_chunk(monkeypatch, client, commands, own_cluster, chunk=2)
    # WHEN
    outcomes = protocol.apply_commands(client, script, commands, 60)
    # THEN every command of a live master, and master 2's first two chunks, were applied...
    for i, (c, outcome) in enumerate(zip(commands, outcomes, strict=True)):
        on_dead = node_index(own_cluster, c.key) == 2
        if on_dead and i >= 20:
            assert isinstance(outcome, RedisConnectionError), (i, outcome)
        else:
            assert outcome == protocol.APPLIED, (i, outcome)
            if not on_dead:
                assert direct_get(own_cluster, node_index(own_cluster, c.key), c.key) is not None
    assert chunk_of_first_group_call  # the kill happened where we meant it to


def _kill_before_chunk(
    monkeypatch: pytest.MonkeyPatch,
    client: Any,
    commands: list[Command],
    cluster: RedisClusterNodes,
    chunk: int,
) -> list[int]:
    """Stop master 2 as the first pipeline of chunk number ``chunk`` is made."""
    for node in cluster.nodes:  # loaded beforehand: no NOSCRIPT retry adds pipelines to the count
        with redis.Redis(port=node.port) as client_of_node:
            for name in protocol.SCRIPT_NAMES:
                client_of_node.script_load(protocol.lua_source(name))
    groups_per_chunk = [
        len({node_index(cluster, c.key) for c in commands[i : i + 10]}) for i in range(0, len(commands), 10)
    ]
    kill_at = sum(groups_per_chunk[:chunk]) + 1
    real_pipeline, calls, killed = routing.node_pool, {"n": 0}, []

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == kill_at:
            cluster.nodes[2].stop()
            killed.append(calls["n"])
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(routing, "node_pool", pipeline)  # every group's connection is taken there
    return killed


def test_master_killed_mid_batch_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, own_cluster: RedisClusterNodes
) -> None:
    monkeypatch.setenv("REDIS_URL", own_cluster.url)
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv("KEY_SCHEMA", KEY_SCHEMA)
    monkeypatch.setattr(protocol, "CHUNK_SIZE", 10)
    invalidator_handler.reset()
    runtime = invalidator_handler.runtime()
    batch = [write(f"k{i}", SEQ + i) for i in range(60)]
    keys = [f"orders-k{i}-1" for i in range(60)]
    commands = [command(k, SEQ + i) for i, k in enumerate(keys)]
    _kill_before_chunk(monkeypatch, runtime._client, commands, own_cluster, chunk=3)

    response = invalidator_handler.handler(events.event(batch), None)

    reported = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    first_lost = min(i for i in range(30, 60) if node_index(own_cluster, keys[i]) == 2)
    assert reported == [str(SEQ + i) for i in range(first_lost, 60)]  # the contract's suffix
    for i in range(60):  # nothing before the checkpoint is missing; live masters got everything
        if node_index(own_cluster, keys[i]) != 2:
            assert direct_get(own_cluster, node_index(own_cluster, keys[i]), keys[i]) is not None
    # Master 2 comes back empty; Lambda re-delivers from the checkpoint: the cache converges.
    own_cluster.restart(2)
    resumed = [r for r in batch if r["dynamodb"]["SequenceNumber"] in reported]
    assert invalidator_handler.handler(events.event(resumed), None) == {"batchItemFailures": []}
    for i in range(first_lost, 60):
        assert direct_get(own_cluster, node_index(own_cluster, keys[i]), keys[i]) is not None, i
    invalidator_handler.reset()


def test_script_missing_on_one_master_while_another_is_down(own_cluster: RedisClusterNodes) -> None:
    client = cluster_client(own_cluster.url)
    script = protocol.Scripts.register(client).apply
    live = [f"orders-k{i}-1" for i in range(40) if node_index(own_cluster, f"orders-k{i}-1") != 2]
    protocol.apply_commands(client, script, [command(k, SEQ) for k in live], 60)  # scripts loaded
    redis.Redis(port=own_cluster.nodes[1].port).script_flush()
    own_cluster.nodes[2].stop()

    outcomes = protocol.apply_commands(client, script, [command(k, SEQ + 1) for k in live], 60)

    assert outcomes == [protocol.APPLIED] * len(live)


def test_slot_moved_to_another_master_is_followed(cluster_url: str, redis_cluster: RedisClusterNodes) -> None:
    client = cluster_client(cluster_url)
    script = protocol.Scripts.register(client).apply
    key = "orders-moving-1"
    assert protocol.apply_commands(client, script, [command(key, SEQ)], 60) == [protocol.APPLIED]
    slot = redis.cluster.key_slot(key.encode())
    source = redis_cluster.node_for_slot(slot)
    target = next(n for n in redis_cluster.nodes if n is not source)
    _move_slot(redis_cluster, slot, source, target)
    try:
        # The client's slot map is stale: the node answers MOVED, redis-py follows it.
        assert protocol.apply_commands(client, script, [command(key, SEQ + 1)], 60) == [protocol.APPLIED]
        with redis.Redis(port=target.port) as new_owner:
            assert entry.decode(new_owner.get(key)).version == entry.pad_version(str(SEQ + 1))
    finally:
        _move_slot(redis_cluster, slot, target, source)


def test_slot_being_migrated_is_followed_with_ask(cluster_url: str, redis_cluster: RedisClusterNodes) -> None:
    client = cluster_client(cluster_url)
    script = protocol.Scripts.register(client).apply
    key = "orders-asked-1"
    slot = redis.cluster.key_slot(key.encode())
    source = redis_cluster.node_for_slot(slot)
    target = next(n for n in redis_cluster.nodes if n is not source)
    ids = _begin_migration(slot, source, target)
    with redis.Redis(port=source.port) as src, redis.Redis(port=target.port) as dst:
        # Mid-migration, the key is not on the source: it answers ASK; the write lands on the target.
        assert protocol.apply_commands(client, script, [command(key, SEQ)], 60) == [protocol.APPLIED]
        assert dst.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10) == [key.encode()]
        assert src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10) == []
    _finish_migration(redis_cluster, slot, ids[target.port])  # then move the slot back
    _move_slot(redis_cluster, slot, target, source)


def _node_id(port: int) -> str:
    with redis.Redis(port=port, decode_responses=True) as node:
        return str(node.execute_command("CLUSTER", "MYID"))


def _move_slot(cluster: RedisClusterNodes, slot: int, source: Any, target: Any) -> None:
    """The resharding steps redis-cli performs, for one slot."""
    ids = _begin_migration(slot, source, target)
    with redis.Redis(port=source.port) as src:
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
    _finish_migration(cluster, slot, ids[target.port])


def _begin_migration(slot: int, source: Any, target: Any) -> dict[int, str]:
    """A slot move's first steps: target IMPORTING, source MIGRATING. Node ids by port."""
    ids = {n.port: _node_id(n.port) for n in (source, target)}
    with redis.Redis(port=source.port) as src, redis.Redis(port=target.port) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
    return ids


def _finish_migration(cluster: RedisClusterNodes, slot: int, target_id: str) -> None:
    """A slot move's last step: every master assigns the slot to the target."""
    for node in cluster.nodes:
        with redis.Redis(port=node.port) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    cluster.wait_ok()


# --- Failover on a single-node endpoint (ElastiCache cluster mode disabled): the primary
# endpoint's DNS name moves to the promoted replica; connections still open to the old
# primary get READONLY. Emulated with two servers and the pool's host:port switched.


@pytest.fixture
def primary_and_replica() -> Iterator[tuple[Any, Any]]:
    with running_redis() as primary, running_redis() as replica:
        yield primary, replica


def _demote(old: Any, new: Any) -> None:
    """The failover: the old primary becomes a replica of the new one (writes answer READONLY)."""
    with redis.Redis(port=old.port) as client:
        client.execute_command("REPLICAOF", "127.0.0.1", new.port)


def _endpoint_now_resolves_to(client: Any, port: int) -> None:
    """DNS moved: the next connect (of new and existing connection objects) reaches ``port``."""
    pool = client.connection_pool
    pool.connection_kwargs["port"] = port
    for conn in [*pool._available_connections, *pool._in_use_connections]:
        conn.port = port  # the open socket still reaches the old node until it is closed


def test_readonly_after_failover_is_retried_on_the_new_primary(primary_and_replica: tuple[Any, Any]) -> None:
    old, new = primary_and_replica
    client = redis_client(Settings(redis_url=old.url), INVALIDATOR_TIMEOUTS)
    script = protocol.Scripts.register(client).apply
    assert protocol.apply_commands(client, script, [command("orders-a-1", SEQ)], 60) == [protocol.APPLIED]
    _demote(old, new)
    _endpoint_now_resolves_to(client, new.port)

    outcomes = protocol.apply_commands(client, script, [command("orders-a-1", SEQ + 1)], 60)

    assert outcomes == [protocol.APPLIED]
    with redis.Redis(port=new.port) as check:
        assert entry.decode(check.get("orders-a-1")).version == entry.pad_version(str(SEQ + 1))


def test_single_commands_retry_readonly_too(primary_and_replica: tuple[Any, Any]) -> None:
    old, new = primary_and_replica
    client = redis_client(Settings(redis_url=old.url), INVALIDATOR_TIMEOUTS)
    assert client.set("k", "before")
    _demote(old, new)
    _endpoint_now_resolves_to(client, new.port)
    assert client.set("k", "after")  # READONLY -> reconnect (Retry) -> new primary
    with redis.Redis(port=new.port) as check:
        assert check.get("k") == b"after"


def test_readonly_with_no_new_primary_reports_the_batch(
    monkeypatch: pytest.MonkeyPatch, primary_and_replica: tuple[Any, Any]
) -> None:
    old, new = primary_and_replica
    monkeypatch.setenv("REDIS_URL", old.url)
    monkeypatch.setenv("KEY_SCHEMA", KEY_SCHEMA)
    invalidator_handler.reset()
    batch = [write(f"k{i}", SEQ + i) for i in range(3)]
    try:
        invalidator_handler.runtime()._client.ping()
        _demote(old, new)  # and the endpoint still names `old`: nothing can be written
        response = invalidator_handler.handler(events.event(batch), None)
        assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
            str(SEQ + i) for i in range(3)
        ]
        with redis.Redis(port=old.port) as client:
            client.execute_command("REPLICAOF", "NO", "ONE")  # a primary again: re-delivery converges
        assert invalidator_handler.handler(events.event(batch), None) == {"batchItemFailures": []}
    finally:
        invalidator_handler.reset()


def test_cluster_setting_gives_a_cluster_client_whose_every_node_re_reads_credentials(
    cluster_url: str,
) -> None:
    # Against the real cluster: every node's pool (made by redis-py from the slot map, not by
    # us) must be a ReauthPool, or a rotated AUTH secret breaks the nodes found later.
    client = cluster_client(cluster_url)
    keys = [f"k{i}" for i in range(30)]  # spread over every master
    for key in keys:
        client.set(key, key)
    assert [client.get(key) for key in keys] == [key.encode() for key in keys]
    nodes = client.get_nodes()
    assert len(nodes) == 3
    for node in nodes:
        pool = node.redis_connection.connection_pool
        assert isinstance(pool, connection.ReauthPool), node.name
        assert pool.connection_class is connection.ReauthConnection, node.name
