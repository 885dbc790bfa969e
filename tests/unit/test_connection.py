"""Client options and credentials, without a server (streamcache.connection)."""

from __future__ import annotations

import copy
import logging

import pytest
from redis.connection import SSLConnection
from redis.exceptions import ReadOnlyError

from streamcache import connection
from streamcache.connection import (
    INVALIDATOR_TIMEOUTS,
    READER_TIMEOUTS,
    ReauthConnection,
    ReauthSSLConnection,
    SecretCredentials,
    client_options,
    redis_client,
)
from streamcache.errors import ConfigError
from streamcache.settings import Settings

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-AbCdEf"


class FakeSecrets:
    def __init__(self, *values: str) -> None:
        self.values, self.calls = list(values), 0

    def __call__(self, arn: str) -> str:
        self.calls += 1
        return self.values[min(self.calls, len(self.values)) - 1]


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> FakeSecrets:
    fake = FakeSecrets("tok-1", "tok-2")
    monkeypatch.setattr(connection, "read_secret", fake)
    return fake


def test_credentials_are_read_once_and_cached(secrets: FakeSecrets) -> None:
    credentials = SecretCredentials(ARN)
    assert credentials.get_credentials() == ("tok-1",)
    assert credentials.get_credentials() == ("tok-1",)
    assert secrets.calls == 1


def test_reload_after_rejection_picks_up_the_rotated_token(secrets: FakeSecrets) -> None:
    now = [0.0]
    credentials = SecretCredentials(ARN, clock=lambda: now[0])
    credentials.get_credentials()
    now[0] = 5.0
    assert credentials.reload() is True
    assert credentials.get_credentials() == ("tok-2",)


def test_reload_is_rate_limited(secrets: FakeSecrets) -> None:
    credentials = SecretCredentials(ARN, clock=lambda: 0.0)
    credentials.get_credentials()
    assert credentials.reload() is False  # within RELOAD_MIN_INTERVAL_S of the last read
    assert secrets.calls == 1


def test_reload_failure_keeps_the_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = iter(["tok-1"])

    def flaky(arn: str) -> str:
        try:
            return next(calls)
        except StopIteration:
            raise ConfigError(
                "REDIS_AUTH_SECRET_ARN: cannot read the secret (EndpointConnectionError)"
            ) from None

    monkeypatch.setattr(connection, "read_secret", flaky)
    now = [0.0]
    credentials = SecretCredentials(ARN, clock=lambda: now[0])
    credentials.get_credentials()
    now[0] = 5.0
    assert credentials.reload() is False
    assert credentials.get_credentials() == ("tok-1",)


def test_rbac_secret_gives_username_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "read_secret", lambda arn: '{"username": "app", "password": "pw"}')
    assert SecretCredentials(ARN).get_credentials() == ("app", "pw")


def test_credentials_are_shared_not_copied_and_never_show_the_token(secrets: FakeSecrets) -> None:
    credentials = SecretCredentials(ARN)
    credentials.get_credentials()
    assert copy.deepcopy(credentials) is credentials
    assert "tok-1" not in repr(credentials) and ARN in repr(credentials)


def test_tls_verifies_by_default() -> None:
    options = client_options(Settings(redis_url="rediss://cache.example:6379/0"), INVALIDATOR_TIMEOUTS)
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("required", True)
    assert "ssl_ca_certs" not in options  # the system trust store (ElastiCache's CA is public)


def test_tls_ca_file_is_passed(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings.from_env({"REDIS_URL": "rediss://h:6379/0", "REDIS_TLS_CA_FILE": str(ca)})
    assert client_options(settings, READER_TIMEOUTS)["ssl_ca_certs"] == str(ca)


def test_missing_ca_file_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"REDIS_TLS_CA_FILE='/nope/ca\.pem': no such file"):
        Settings.from_env({"REDIS_URL": "rediss://h:6379/0", "REDIS_TLS_CA_FILE": "/nope/ca.pem"})


def test_insecure_tls_is_logged_loudly(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(redis_url="rediss://h:6379/0", redis_tls_insecure=True)
    with caplog.at_level(logging.WARNING):
        options = client_options(settings, INVALIDATOR_TIMEOUTS)
    assert options["ssl_cert_reqs"] == "none" and "NOT verified" in caplog.text


def test_plain_url_has_no_tls_options() -> None:
    options = client_options(Settings(redis_url="redis://h:6379/0"), INVALIDATOR_TIMEOUTS)
    assert not any(name.startswith("ssl") for name in options)


def test_readonly_is_a_retried_error() -> None:
    retry = client_options(Settings(redis_url="redis://h:6379/0"), INVALIDATOR_TIMEOUTS)["retry"]
    assert ReadOnlyError in retry._supported_errors and retry.get_retries() == 2


def test_connections_re_read_credentials_plain_and_tls() -> None:
    plain = redis_client(Settings(redis_url="redis://127.0.0.1:1/0"), INVALIDATOR_TIMEOUTS)
    tls = redis_client(Settings(redis_url="rediss://127.0.0.1:1/0"), INVALIDATOR_TIMEOUTS)
    assert plain.connection_pool.connection_class is ReauthConnection
    assert tls.connection_pool.connection_class is ReauthSSLConnection
    assert issubclass(ReauthSSLConnection, SSLConnection)
