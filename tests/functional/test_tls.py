"""TLS (rediss://) against a TLS-only redis-server, and a TLS-only cluster, with a CA made by the fixture."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import key_slot
from redis.retry import Retry

import invalidator.handler as invalidator_handler
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.local import events
from streamcache.local.inspect import holding
from streamcache.local.redis_cluster import RedisClusterNodes, admin, running_cluster
from streamcache.local.tls import TlsFiles, TlsRedisServer, make_tls_files, running_tls_redis
from streamcache.settings import Settings

SEQ = events.FIRST_SEQUENCE


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[TlsRedisServer]:
    with running_tls_redis() as server:
        yield server


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A second, unrelated CA: the server's certificate is not signed by it."""
    return make_tls_files(tmp_path_factory.mktemp("other-ca"), common_name="not-the-servers-ca")


def client_for(url: str, **settings: Any) -> Any:
    return redis_client(Settings(redis_url=url, **settings), INVALIDATOR_TIMEOUTS)


def test_plain_tcp_is_refused_by_the_tls_server(tls_redis: TlsRedisServer) -> None:
    plain = tls_redis.url.replace("rediss://", "redis://")
    with pytest.raises(redis.ConnectionError):
        client_for(plain).ping()


def test_verified_tls_with_the_servers_ca(tls_redis: TlsRedisServer) -> None:
    client = client_for(tls_redis.url, redis_tls_ca_file=str(tls_redis.files.ca_cert))
    assert client.ping()
    ssl_kwargs = client.connection_pool.connection_kwargs
    assert (ssl_kwargs["ssl_cert_reqs"], ssl_kwargs["ssl_check_hostname"]) == ("required", True)


def test_wrong_ca_fails_with_a_clear_error(tls_redis: TlsRedisServer, other_ca: TlsFiles) -> None:
    client = client_for(tls_redis.url, redis_tls_ca_file=str(other_ca.ca_cert))
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client.ping()


def test_system_trust_store_does_not_trust_a_private_ca(tls_redis: TlsRedisServer) -> None:
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client_for(tls_redis.url).ping()


def test_insecure_opt_out_connects_and_says_so_loudly(
    tls_redis: TlsRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="streamcache.connection"):
        client = client_for(tls_redis.url, redis_tls_insecure=True)
    assert client.ping()
    assert "NOT verified" in caplog.text


def test_invalidator_over_tls(monkeypatch: pytest.MonkeyPatch, tls_redis: TlsRedisServer) -> None:
    monkeypatch.setenv("REDIS_URL", tls_redis.url)
    monkeypatch.setenv("REDIS_TLS_CA_FILE", str(tls_redis.files.ca_cert))
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    invalidator_handler.reset()
    keys = {"pk": {"S": "tls"}, "sk": {"N": "1"}}
    record = events.record("orders", "INSERT", keys, SEQ, new=events.item(keys))
    try:
        assert invalidator_handler.handler(events.event([record]), None) == {"batchItemFailures": []}
        check = client_for(tls_redis.url, redis_tls_ca_file=str(tls_redis.files.ca_cert))
        assert check.get("orders-tls-1") is not None
    finally:
        invalidator_handler.reset()


def test_invalidator_with_wrong_ca_reports_the_batch(
    monkeypatch: pytest.MonkeyPatch, tls_redis: TlsRedisServer, other_ca: TlsFiles
) -> None:
    monkeypatch.setenv("REDIS_URL", tls_redis.url)
    monkeypatch.setenv("REDIS_TLS_CA_FILE", str(other_ca.ca_cert))
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    invalidator_handler.reset()
    keys = {"pk": {"S": "tls"}, "sk": {"N": "2"}}
    record = events.record("orders", "INSERT", keys, SEQ, new=events.item(keys))
    try:
        response = invalidator_handler.handler(events.event([record]), None)
        assert response == {"batchItemFailures": [{"itemIdentifier": str(SEQ)}]}
    finally:
        invalidator_handler.reset()


# --- TLS in cluster mode: every node TLS only (clients, cluster bus, replication), nodes
# announce 127.0.0.1, the certificate names it: chain and host name are both verified.


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[RedisClusterNodes]:
    with running_cluster(tls=True) as cluster:
        yield cluster


@pytest.fixture
def tls_cluster_env(monkeypatch: pytest.MonkeyPatch, tls_cluster: RedisClusterNodes) -> dict[str, str]:
    assert tls_cluster.tls is not None
    for node in tls_cluster.nodes:
        with admin(node) as client:
            client.flushall()
    env = {
        "REDIS_URL": tls_cluster.url,
        "REDIS_CLUSTER": "true",
        "REDIS_TLS_CA_FILE": str(tls_cluster.tls.ca_cert),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def invalidator_env(invalidator_env: dict[str, str], tls_cluster_env: dict[str, str]) -> dict[str, str]:
    """The readerkit fixtures (``read``), with both functions on the TLS cluster."""
    return {**invalidator_env, **tls_cluster_env}


def test_tls_cluster_refuses_plain_tcp(tls_cluster: RedisClusterNodes) -> None:
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=tls_cluster.nodes[0].port, socket_timeout=0.3, retry=Retry(NoBackoff(), 0)).ping()


def test_invalidator_batch_over_a_tls_cluster_with_host_names_verified(
    invalidator_env: dict[str, str], tls_cluster: RedisClusterNodes
) -> None:
    invalidator_handler.reset()
    batch = [
        events.record("orders", "INSERT", k, SEQ + i, new=events.item(k))
        for i, k in enumerate({"pk": {"S": f"t{i}"}, "sk": {"N": "1"}} for i in range(30))
    ]
    assert invalidator_handler.handler(events.event(batch), None) == {"batchItemFailures": []}
    client = invalidator_handler.runtime()._client
    nodes = client.get_nodes()
    assert sorted(n.port for n in nodes) == sorted(n.port for n in tls_cluster.nodes)
    for node in nodes:  # every node discovered from CLUSTER SLOTS: TLS, CA and host name checked
        kwargs = node.redis_connection.connection_pool.connection_kwargs
        assert (node.host, kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"]) == (
            "127.0.0.1",
            "required",
            True,
        )
    per_node = []
    for node in tls_cluster.nodes:
        with admin(node) as direct:
            per_node.append(len(direct.keys("orders-t*")))
    assert all(count > 0 for count in per_node) and sum(per_node) == 30


def test_reader_lease_and_fill_over_a_tls_cluster(
    read: Any, dynamodb: Any, tls_cluster: RedisClusterNodes
) -> None:
    keys = {"pk": {"S": "tlsr"}, "sk": {"N": "7"}}
    dynamodb.put_item(TableName="orders", Item=events.item(keys, v={"S": "one"}))
    # miss: lease, DynamoDB, fill; then the fill is served
    assert read({"pk": "tlsr", "sk": 7}) == {
        "found": True,
        "item": {"pk": "tlsr", "sk": 7, "v": "one"},
        "source": "dynamodb",
    }
    assert read({"pk": "tlsr", "sk": 7})["source"] == "cache"
    owner = tls_cluster.node_for_slot(key_slot(b"orders-tlsr-7"))
    with admin(owner, decode=False) as direct:
        assert holding(direct, "orders-tlsr-7")["state"] == "item (reader fill)"
        # a newer stream record invalidates the fill (reader-filled keys stay invalidate-only)...
        new = events.item(keys, v={"S": "two"})
        record = events.record("orders", "MODIFY", keys, SEQ, new=new)
        assert invalidator_handler.handler(events.event([record]), None) == {"batchItemFailures": []}
        assert holding(direct, "orders-tlsr-7")["state"] == "invalidated"
        # ...and the next read takes a lease again and fills the new state
        dynamodb.put_item(TableName="orders", Item=new)
        assert read({"pk": "tlsr", "sk": 7}) == {
            "found": True,
            "item": {"pk": "tlsr", "sk": 7, "v": "two"},
            "source": "dynamodb",
        }
        assert holding(direct, "orders-tlsr-7")["item"] == new
    assert read({"pk": "tlsr", "sk": 7})["source"] == "cache"
