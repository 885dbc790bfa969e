"""Automatic failover with real replicas: a batch during the failover, then re-delivery.

Two shapes of production Redis:
- cluster mode with one replica per master (6 processes, cluster-node-timeout
  500 ms): a master is SIGKILLed mid-batch, its replica promotes itself;
- a single-node endpoint (primary + replica): the primary is demoted mid-batch
  (REPLICAOF the other) while the client still reaches it, so writes get READONLY.

In both, the batch during the failover must report exactly the records whose
command was not confirmed (never mark one applied that is not), and
re-delivery from the checkpoint must converge: every key holds its latest record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster, key_slot

import invalidator.handler as invalidator_handler
from invalidator import processor
from streamcache import entry, protocol, routing
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.local import events
from streamcache.local.redis_cluster import RedisClusterNodes, admin, running_cluster
from streamcache.local.redis_server import RedisServer, running_redis
from streamcache.records import Command
from streamcache.settings import Settings
from tests.functional.test_cluster import _begin_migration, _move_slot

SEQ = events.FIRST_SEQUENCE
KEY_SCHEMA = '{"orders": ["pk", "sk"]}'
KEYS = 60
CHUNK = 10
KILL_AT_CHUNK = 3  # chunks 0..2 are sent before the failover starts


def write(i: int, seq: int) -> dict[str, Any]:
    keys = {"pk": {"S": f"k{i}"}, "sk": {"N": "1"}}
    return events.record("orders", "INSERT", keys, seq, new=events.item(keys, v={"N": str(seq)}))


def cache_key(i: int) -> str:
    return f"orders-k{i}-1"


def first_round() -> list[dict[str, Any]]:
    return [write(i, SEQ + i) for i in range(KEYS)]


def second_round() -> list[dict[str, Any]]:
    """Newer records for the same keys: the replica still holds the first round's."""
    return [write(i, SEQ + KEYS + i) for i in range(KEYS)]


def reported(response: dict[str, Any]) -> list[int]:
    return [int(f["itemIdentifier"]) for f in response["batchItemFailures"]]


def version_of(client: Any, key: str) -> int | None:
    raw = client.get(key)
    return None if raw is None else int(entry.decode(raw).version)


@pytest.fixture
def handler_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Point the invalidator at a Redis (env), with 10-command chunks; returns its runtime."""

    def configure(url: str, cluster: bool) -> Any:
        monkeypatch.setenv("REDIS_URL", url)
        monkeypatch.setenv("REDIS_CLUSTER", "true" if cluster else "false")
        monkeypatch.setenv("KEY_SCHEMA", KEY_SCHEMA)
        monkeypatch.setattr(protocol, "CHUNK_SIZE", CHUNK)
        invalidator_handler.reset()
        return invalidator_handler.runtime()

    yield configure
    invalidator_handler.reset()


def before_chunk(
    monkeypatch: pytest.MonkeyPatch, client: Any, chunk: int, action: Callable[[], None]
) -> None:
    """Run ``action`` once, as the first pipeline of chunk number ``chunk`` (in commands) is made."""
    real_apply, real_pipeline = processor.apply_commands, routing.node_pool
    calls = {"pipelines": 0, "at": -1}

    def apply_commands(c: Any, script: Any, commands: Any, ttl: int, **acks: int) -> Any:
        if calls["at"] < 0:  # the batch's first call (not the fail-safe invalidations after it)
            calls["at"] = sum(_groups(c, commands[i : i + CHUNK]) for i in range(0, chunk * CHUNK, CHUNK)) + 1
        return real_apply(c, script, commands, ttl, **acks)

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        calls["pipelines"] += 1
        if calls["pipelines"] == calls["at"]:
            action()
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(processor, "apply_commands", apply_commands)
    monkeypatch.setattr(routing, "node_pool", pipeline)  # every group's connection is taken there


def _groups(client: Any, commands: Any) -> int:
    if not isinstance(client, RedisCluster):
        return 1
    return len({client.get_node_from_key(c.key).name for c in commands})


def wait_replicated(primary: RedisServer, replica: RedisServer, timeout: float = 5.0) -> None:
    """Until ``replica`` has processed the primary's whole replication stream.

    Replication is asynchronous: a write confirmed by a primary that dies
    before shipping it is lost with it. The tests exclude that window (see README).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin(primary) as p, admin(replica) as r:
            target = p.info("replication")["master_repl_offset"]
            if r.info("replication")["master_repl_offset"] >= target:
                return
        time.sleep(0.005)
    raise TimeoutError(f"the replica on port {replica.port} did not catch up within {timeout}s")


# --- Cluster mode: a master dies, its replica is promoted.


@pytest.fixture
def replicated_cluster() -> Iterator[RedisClusterNodes]:
    with running_cluster(replicas=1, node_timeout_ms=500) as cluster:
        yield cluster


def wait_promoted(cluster: RedisClusterNodes, dead: RedisServer, slot: int, timeout: float = 10.0) -> float:
    """Until the cluster is ok and ``slot`` is served by another node; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if cluster.owner(slot) is not dead:
                cluster.wait_ok(timeout)
                return time.monotonic() - start
        except redis.RedisError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"no replica took over slot {slot} within {timeout}s")


def test_cluster_master_killed_mid_batch_fails_over_and_redelivery_converges(
    monkeypatch: pytest.MonkeyPatch, replicated_cluster: RedisClusterNodes, handler_on: Any
) -> None:
    cluster = replicated_cluster
    runtime = handler_on(cluster.url, cluster=True)
    assert reported(invalidator_handler.handler(events.event(first_round()), None)) == []
    dead = cluster.nodes[2]
    on_dead = [cluster.node_for_slot(key_slot(cache_key(i).encode())) is dead for i in range(KEYS)]
    killed_at: list[float] = []

    def kill() -> None:
        wait_replicated(dead, cluster.replica_nodes[2])  # all it confirmed is on its replica
        dead.stop()  # SIGKILL
        killed_at.append(time.monotonic())

    before_chunk(monkeypatch, runtime._client, KILL_AT_CHUNK, kill)
    batch = second_round()
    outcomes = _capture_outcomes(monkeypatch)

    # WHEN the second round is delivered while master 2 dies
    response = invalidator_handler.handler(events.event(batch), None)

    # THEN exactly the dead master's commands from the kill on failed; the report is their suffix
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, Exception)]
    assert failed == [i for i in range(KILL_AT_CHUNK * CHUNK, KEYS) if on_dead[i]], outcomes
    assert reported(response) == [SEQ + KEYS + i for i in range(failed[0], KEYS)]
    failover_s = wait_promoted(cluster, dead, key_slot(cache_key(failed[0]).encode()))
    print(
        f"\nfailover: {time.monotonic() - killed_at[0]:.2f}s from SIGKILL ({failover_s:.2f}s after the batch)"
    )
    print(f"records reported: {len(reported(response))} of {KEYS}, failed commands: {len(failed)}")
    check = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    for i in range(failed[0]):  # before the checkpoint: confirmed, so there, on the new master too
        assert version_of(check, cache_key(i)) == SEQ + KEYS + i, i

    # WHEN Lambda re-delivers from the checkpoint, after the promotion
    resumed = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) in reported(response)]
    assert invalidator_handler.handler(events.event(resumed), None) == {"batchItemFailures": []}
    # THEN every key holds its latest record
    assert [version_of(check, cache_key(i)) for i in range(KEYS)] == [SEQ + KEYS + i for i in range(KEYS)]
    check.close()


def _capture_outcomes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The per-command outcomes of the batch's first ``apply_commands`` call (before any fail-safe)."""
    seen: list[Any] = []
    inner = processor.apply_commands

    def apply_commands(*args: Any, **kwargs: Any) -> Any:
        result = inner(*args, **kwargs)
        if not seen:
            seen.extend(result)
        return result

    monkeypatch.setattr(processor, "apply_commands", apply_commands)
    return seen


# --- Single-node endpoint: the primary is demoted mid-batch, writes get READONLY.


@pytest.fixture
def replicated_pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    no_delay = ["--repl-diskless-sync-delay", "0"]  # the default waits 5 s before the first sync
    with running_redis(no_delay) as primary, running_redis(no_delay) as replica:
        with admin(replica) as client:
            client.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        _wait_link_up(replica)
        yield primary, replica


def _wait_link_up(replica: RedisServer, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin(replica) as client:
            if client.info("replication").get("master_link_status") == "up":
                return
        time.sleep(0.02)
    raise TimeoutError(f"replica on port {replica.port} did not sync within {timeout}s")


def test_primary_demoted_mid_batch_reports_what_got_readonly_then_converges(
    monkeypatch: pytest.MonkeyPatch, replicated_pair: tuple[RedisServer, RedisServer], handler_on: Any
) -> None:
    old, new = replicated_pair
    runtime = handler_on(old.url, cluster=False)
    assert reported(invalidator_handler.handler(events.event(first_round()), None)) == []

    def fail_over() -> None:
        wait_replicated(old, new)
        with admin(new) as client:
            client.execute_command("REPLICAOF", "NO", "ONE")
        with admin(old) as client:
            client.execute_command("REPLICAOF", "127.0.0.1", new.port)  # the client still reaches `old`

    before_chunk(monkeypatch, runtime._client, KILL_AT_CHUNK, fail_over)
    batch = second_round()
    outcomes = _capture_outcomes(monkeypatch)

    # WHEN the second round is delivered while the primary is demoted
    response = invalidator_handler.handler(events.event(batch), None)

    # THEN READONLY was retried on a new connection (still the old node: the endpoint did not
    # move) and reported: exactly the commands from the demotion on, and nothing after them is applied
    start = KILL_AT_CHUNK * CHUNK
    assert [i for i, o in enumerate(outcomes) if isinstance(o, Exception)] == list(range(start, KEYS))
    assert all(isinstance(o, redis.exceptions.ReadOnlyError) for o in outcomes[start:])
    assert reported(response) == [SEQ + KEYS + i for i in range(start, KEYS)]
    with redis.Redis(port=new.port) as check:
        assert [version_of(check, cache_key(i)) for i in range(KEYS)] == [
            SEQ + KEYS + i if i < start else SEQ + i for i in range(KEYS)
        ]

    # WHEN the endpoint's DNS follows the promotion and Lambda re-delivers from the checkpoint
    _endpoint_now_resolves_to(runtime._client, new.port)
    resumed = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) in reported(response)]
    assert invalidator_handler.handler(events.event(resumed), None) == {"batchItemFailures": []}
    # THEN every key holds its latest record (on the new primary, and replicated to the old)
    wait_replicated(new, old)
    for node in (new, old):
        with redis.Redis(port=node.port) as check:
            assert [version_of(check, cache_key(i)) for i in range(KEYS)] == [
                SEQ + KEYS + i for i in range(KEYS)
            ]


def _endpoint_now_resolves_to(client: Any, port: int) -> None:
    """DNS moved: the next connect (of new and existing connection objects) reaches ``port``."""
    pool = client.connection_pool
    pool.connection_kwargs["port"] = port
    for conn in [*pool._available_connections, *pool._in_use_connections]:
        conn.port = port  # the open socket still reaches the old node until it is closed


# --- REDIS_MIN_REPLICA_ACKS: each pipeline ends with WAIT; a write no replica confirmed is not applied.


@pytest.fixture
def acks_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def configure(acks: int, timeout_ms: int = 2000) -> None:  # generous: a busy CI machine
        monkeypatch.setenv("REDIS_MIN_REPLICA_ACKS", str(acks))
        monkeypatch.setenv("REDIS_REPLICA_ACK_TIMEOUT_MS", str(timeout_ms))

    return configure


def wait_calls(node: RedisServer) -> int:
    with admin(node) as client:
        return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def versions_on(node: RedisServer) -> list[int | None]:
    with redis.Redis(port=node.port) as client:
        return [version_of(client, cache_key(i)) for i in range(KEYS)]


def test_replica_acks_confirm_every_pipeline_with_one_wait(
    monkeypatch: pytest.MonkeyPatch,
    replicated_pair: tuple[RedisServer, RedisServer],
    handler_on: Any,
    acks_env: Callable[..., None],
) -> None:
    primary, replica = replicated_pair
    acks_env(1)
    handler_on(primary.url, cluster=False)
    outcomes = _capture_outcomes(monkeypatch)

    # WHEN a batch is applied with REDIS_MIN_REPLICA_ACKS=1 and the replica is up
    response = invalidator_handler.handler(events.event(first_round()), None)

    # THEN every command is confirmed, by one WAIT per 10-command pipeline (the first chunk is
    # sent twice: NOSCRIPT, then after loading the script), and the replica has
    # every write as soon as the batch returns (no waiting for replication)
    assert reported(response) == [], str(outcomes[0])
    assert outcomes == [protocol.APPLIED] * KEYS
    assert wait_calls(primary) == KEYS // CHUNK + 1
    assert versions_on(replica) == [SEQ + i for i in range(KEYS)]


def test_replica_down_means_no_write_counts_as_applied(
    monkeypatch: pytest.MonkeyPatch,
    replicated_pair: tuple[RedisServer, RedisServer],
    handler_on: Any,
    acks_env: Callable[..., None],
) -> None:
    primary, replica = replicated_pair
    acks_env(1, timeout_ms=50)
    handler_on(primary.url, cluster=False)
    replica.stop()  # SIGKILL: WAIT gets 0 acknowledgements
    outcomes = _capture_outcomes(monkeypatch)

    # WHEN a batch is delivered
    started = time.monotonic()
    response = invalidator_handler.handler(events.event(first_round()), None)

    # THEN the primary applied the first chunk but no replica confirmed it: every record is
    # reported, and the node counts as down after one WAIT timeout (no WAIT per chunk)
    assert reported(response) == [SEQ + i for i in range(KEYS)]
    assert all(isinstance(o, protocol.ReplicaAckError) for o in outcomes), outcomes
    assert "REDIS_MIN_REPLICA_ACKS=1: 0 replica(s) confirmed within 50 ms" in str(outcomes[0])
    assert wait_calls(primary) == 2  # the first chunk: NOSCRIPT, then after loading the script
    # The exact check is wait_calls above; this one catches a WAIT that hangs past its
    # 50 ms timeout. One timeout plus six local chunks is well under 0.5 s by design; 5 s
    # leaves room for a loaded 2-core machine.
    assert time.monotonic() - started < 5.0
    assert versions_on(primary)[:CHUNK] == [SEQ + i for i in range(CHUNK)]


def test_without_replica_acks_no_wait_is_sent(
    replicated_pair: tuple[RedisServer, RedisServer], handler_on: Any, acks_env: Callable[..., None]
) -> None:
    primary, _ = replicated_pair
    acks_env(0)
    handler_on(primary.url, cluster=False)
    assert reported(invalidator_handler.handler(events.event(first_round()), None)) == []
    assert versions_on(primary) == [SEQ + i for i in range(KEYS)]
    assert wait_calls(primary) == 0


def test_replica_acks_on_a_cluster_confirm_on_every_master(
    monkeypatch: pytest.MonkeyPatch,
    replicated_cluster: RedisClusterNodes,
    handler_on: Any,
    acks_env: Callable[..., None],
) -> None:
    cluster = replicated_cluster
    acks_env(1)
    handler_on(cluster.url, cluster=True)
    outcomes = _capture_outcomes(monkeypatch)

    response = invalidator_handler.handler(events.event(first_round()), None)

    # THEN each master's group was confirmed by a WAIT on that master's own connection
    assert reported(response) == []
    assert outcomes == [protocol.APPLIED] * KEYS
    assert all(wait_calls(master) > 0 for master in cluster.nodes)
    for i in range(KEYS):  # on the owner's replica without waiting for replication
        owner = cluster.nodes.index(cluster.node_for_slot(key_slot(cache_key(i).encode())))
        with redis.Redis(port=cluster.replica_nodes[owner].port) as replica:
            replica.execute_command("READONLY")  # a cluster replica answers reads only after this
            assert version_of(replica, cache_key(i)) == SEQ + i, i


def test_replica_acks_on_a_cluster_follow_moved_and_wait_on_the_new_owner(
    replicated_cluster: RedisClusterNodes,
) -> None:
    cluster = replicated_cluster
    client = redis_client(Settings(redis_url=cluster.url, redis_cluster=True), INVALIDATOR_TIMEOUTS)
    script = protocol.Scripts.register(client).apply
    key = cache_key(0)
    acks = {"min_replica_acks": 1, "replica_ack_timeout_ms": 1000}
    assert protocol.apply_commands(client, script, [_command(key, SEQ)], 60, **acks) == [protocol.APPLIED]
    slot = key_slot(key.encode())
    source = cluster.node_for_slot(slot)
    target = next(n for n in cluster.nodes if n is not source)
    _move_slot(cluster, slot, source, target)
    waits_on_source = wait_calls(source)

    # WHEN the client's slot map is stale: the old owner answers MOVED
    outcomes = protocol.apply_commands(client, script, [_command(key, SEQ + 1)], 60, **acks)
    assert wait_calls(source) == waits_on_source + 1  # the stale attempt went there

    # THEN the write is sent again to the new owner, confirmed there by its replica
    assert outcomes == [protocol.APPLIED], outcomes
    assert wait_calls(target) >= 1
    with redis.Redis(port=cluster.replica_nodes[cluster.nodes.index(target)].port) as replica:
        replica.execute_command("READONLY")
        assert version_of(replica, key) == SEQ + 1
    client.close()


def _command(key: str, seq: int) -> Command:
    return Command(key, entry.ITEM, entry.pad_version(str(seq)), b'{"v": {"S": "x"}}', "image")


def test_replica_acks_on_a_cluster_follow_ask_and_wait_on_the_target(
    replicated_cluster: RedisClusterNodes,
) -> None:
    cluster = replicated_cluster
    client = redis_client(Settings(redis_url=cluster.url, redis_cluster=True), INVALIDATOR_TIMEOUTS)
    script = protocol.Scripts.register(client).apply
    key = cache_key(1)
    slot = key_slot(key.encode())
    source = cluster.node_for_slot(slot)
    target = next(n for n in cluster.nodes if n is not source)
    _begin_migration(slot, source, target)
    with redis.Redis(port=target.port) as dst:
        waits_on_target = wait_calls(target)

        # WHEN the slot is mid-migration and the key is not on the source: it answers ASK
        acks = {"min_replica_acks": 1, "replica_ack_timeout_ms": 1000}
        outcomes = protocol.apply_commands(client, script, [_command(key, SEQ)], 60, **acks)

        # THEN the write lands on the target (ASKING; NOSCRIPT there first, so sent twice), each
        # pipeline confirmed there by a WAIT
        assert outcomes == [protocol.APPLIED], outcomes
        assert dst.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10) == [key.encode()]
        assert wait_calls(target) == waits_on_target + 2
    client.close()
