"""AUTH from Secrets Manager (moto) against redis-server --requirepass / ACL users, with rotation."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from moto import mock_aws

import invalidator.handler as invalidator_handler
from streamcache import aws, connection
from streamcache.connection import INVALIDATOR_TIMEOUTS, SecretCredentials, redis_client
from streamcache.errors import ConfigError
from streamcache.local import events
from streamcache.local.redis_server import RedisServer, running_redis
from streamcache.settings import Settings

SEQ = events.FIRST_SEQUENCE
OLD, NEW = "old-token-Zq81xT", "new-token-Lm27pW"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, fake_aws: None) -> Iterator[Any]:
    monkeypatch.setattr(connection, "RELOAD_MIN_INTERVAL_S", 0.0)
    with mock_aws():
        yield aws.client("secretsmanager")


@pytest.fixture
def protected_redis() -> Iterator[RedisServer]:
    with running_redis() as server:  # started open so its readiness probe can PING, then locked
        redis.Redis(port=server.port).config_set("requirepass", OLD)
        yield server


def admin(server: RedisServer, password: str) -> redis.Redis:
    return redis.Redis(port=server.port, password=password)


def make_secret(secrets: Any, value: str) -> str:
    return str(secrets.create_secret(Name="redis-auth", SecretString=value)["ARN"])


def client_for(server: RedisServer, arn: str) -> Any:
    return redis_client(Settings(redis_url=server.url, redis_auth_secret_arn=arn), INVALIDATOR_TIMEOUTS)


def rotate(server: RedisServer, secrets: Any, arn: str, old: str, new: str) -> None:
    """What a rotation does: the server takes the new token, the secret holds it, old sessions end."""
    with admin(server, old) as client:
        client.config_set("requirepass", new)
        client.client_kill_filter(_type="normal", skipme=True)
    secrets.put_secret_value(SecretId=arn, SecretString=new)


def test_bare_token_from_the_secret(secrets: Any, protected_redis: RedisServer) -> None:
    client = client_for(protected_redis, make_secret(secrets, OLD))
    assert client.set("k", "v") and client.get("k") == b"v"


def test_rbac_username_and_password(secrets: Any, protected_redis: RedisServer) -> None:
    with admin(protected_redis, OLD) as root:
        root.acl_setuser(
            "cache-writer", enabled=True, passwords=["+rbac-pw-Qy71"], keys=["*"], commands=["+@all"]
        )
    client = client_for(
        protected_redis, make_secret(secrets, '{"username": "cache-writer", "password": "rbac-pw-Qy71"}')
    )
    assert client.acl_whoami() in ("cache-writer", b"cache-writer")


def test_secret_is_read_once_per_environment(secrets: Any, protected_redis: RedisServer) -> None:
    client = client_for(protected_redis, make_secret(secrets, OLD))
    for _ in range(5):
        client.ping()
    client.connection_pool.disconnect()  # new connections reuse the cached token
    client.ping()
    assert client.connection_pool.connection_kwargs["credential_provider"].reads == 1


def test_rotation_is_picked_up_on_the_next_call(secrets: Any, protected_redis: RedisServer) -> None:
    arn = make_secret(secrets, OLD)
    client = client_for(protected_redis, arn)
    assert client.ping()
    rotate(protected_redis, secrets, arn, OLD, NEW)
    assert client.set("after", "rotation")  # WRONGPASS on reconnect -> re-read -> OK
    credentials: SecretCredentials = client.connection_pool.connection_kwargs["credential_provider"]
    assert credentials.reads == 2


def test_invalidator_batch_survives_rotation(
    monkeypatch: pytest.MonkeyPatch, secrets: Any, protected_redis: RedisServer
) -> None:
    arn = make_secret(secrets, OLD)
    monkeypatch.setenv("REDIS_URL", protected_redis.url)
    monkeypatch.setenv("REDIS_AUTH_SECRET_ARN", arn)
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    invalidator_handler.reset()
    keys = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    try:
        first = events.record("orders", "INSERT", keys, SEQ, new=events.item(keys))
        assert invalidator_handler.handler(events.event([first]), None) == {"batchItemFailures": []}
        rotate(protected_redis, secrets, arn, OLD, NEW)
        second = events.record("orders", "MODIFY", keys, SEQ + 1, new=events.item(keys))
        assert invalidator_handler.handler(events.event([second]), None) == {"batchItemFailures": []}
        with admin(protected_redis, NEW) as check:
            assert check.get("orders-a-1") is not None
    finally:
        invalidator_handler.reset()


def test_wrong_token_never_leaks_into_logs_or_errors(
    monkeypatch: pytest.MonkeyPatch,
    secrets: Any,
    protected_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "wrong-token-Xv93kD"
    arn = make_secret(secrets, wrong)
    caplog.set_level(logging.DEBUG)  # everything, botocore's request/response bodies included
    client = client_for(protected_redis, arn)
    with pytest.raises(redis.AuthenticationError) as failed:
        client.ping()
    texts = [str(failed.value), repr(failed.value), "".join(traceback.format_exception(failed.value))]
    texts.append(repr(client.connection_pool.connection_kwargs["credential_provider"]))
    # The handler too: its batch is reported, its log lines and metrics go to stdout.
    monkeypatch.setenv("REDIS_URL", protected_redis.url)
    monkeypatch.setenv("REDIS_AUTH_SECRET_ARN", arn)
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    invalidator_handler.reset()
    keys = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    record = events.record("orders", "INSERT", keys, SEQ, new=events.item(keys))
    try:
        response = invalidator_handler.handler(events.event([record]), None)
    finally:
        invalidator_handler.reset()
    assert response == {"batchItemFailures": [{"itemIdentifier": str(SEQ)}]}
    texts += [caplog.text, *capsys.readouterr()]
    assert "rejected the AUTH credentials" in caplog.text  # the failure is logged...
    assert all(wrong not in text and OLD not in text for text in texts)  # ...never the token


def test_unchanged_secret_is_not_re_read_on_every_connection(
    monkeypatch: pytest.MonkeyPatch, secrets: Any, protected_redis: RedisServer
) -> None:
    monkeypatch.setattr(connection, "RELOAD_MIN_INTERVAL_S", 60.0)
    client = client_for(protected_redis, make_secret(secrets, "wrong-token"))
    for _ in range(3):
        with pytest.raises(redis.AuthenticationError):
            client.ping()
    assert client.connection_pool.connection_kwargs["credential_provider"].reads == 1


def test_unreadable_secret_fails_at_init_naming_the_setting(
    secrets: Any, protected_redis: RedisServer
) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    with pytest.raises(ConfigError, match="REDIS_AUTH_SECRET_ARN: cannot read the secret"):
        client_for(protected_redis, missing)
