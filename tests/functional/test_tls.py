"""TLS (rediss://) against a TLS-only redis-server with a CA made by the fixture."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import invalidator.handler as invalidator_handler
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.local import events
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
