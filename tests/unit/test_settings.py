"""CONTRACT section 2: settings read once, one clear line per bad value."""

from __future__ import annotations

import pytest

from streamcache.connection import parse_auth_secret
from streamcache.errors import ConfigError
from streamcache.settings import Settings

BASE = {"REDIS_URL": "redis://localhost:6379/0"}


def test_defaults() -> None:
    s = Settings.from_env(BASE)
    assert (s.cache_ttl_seconds, s.negative_cache_ttl_seconds, s.key_prefix) == (3600, 60, "")
    assert (s.redis_cluster, s.key_schema, s.allowed_tables) == (False, {}, frozenset())


def test_full_configuration() -> None:
    s = Settings.from_env(
        {
            **BASE,
            "REDIS_CLUSTER": "true",
            "CACHE_TTL_SECONDS": "10",
            "KEY_SCHEMA": '{"orders": ["pk", "sk"], "users": "id"}',
            "TABLE_NAME": "orders",
        }
    )
    assert s.redis_cluster and s.cache_ttl_seconds == 10
    assert s.key_schema == {"orders": ("pk", "sk"), "users": ("id",)}
    assert s.allowed_tables == frozenset({"orders"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "REDIS_URL is required"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL has scheme 'http'"),
        ({**BASE, "REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER='maybe' is not a boolean"),
        ({**BASE, "CACHE_TTL_SECONDS": "-5"}, "CACHE_TTL_SECONDS='-5' is not a positive whole number"),
        ({**BASE, "NEGATIVE_CACHE_TTL_SECONDS": "0"}, "NEGATIVE_CACHE_TTL_SECONDS='0'"),
        ({**BASE, "KEY_SCHEMA": "{oops"}, "KEY_SCHEMA is not valid JSON"),
        ({**BASE, "KEY_SCHEMA": "[]"}, "KEY_SCHEMA must be a JSON object"),
        ({**BASE, "KEY_SCHEMA": '{"t": ["a", "b", "c"]}'}, "entry for table 't'"),
        ({**BASE, "REDIS_AUTH_SECRET_ARN": "token"}, "not a Secrets Manager secret ARN"),
        ({**BASE, "REDIS_MIN_REPLICA_ACKS": "-1"}, "REDIS_MIN_REPLICA_ACKS='-1' is not a whole number"),
        ({**BASE, "REDIS_MIN_REPLICA_ACKS": "one"}, "REDIS_MIN_REPLICA_ACKS='one'"),
        ({**BASE, "REDIS_MIN_REPLICA_ACKS": "1.5"}, "REDIS_MIN_REPLICA_ACKS='1.5'"),
        ({**BASE, "REDIS_MIN_REPLICA_ACKS": "²"}, "REDIS_MIN_REPLICA_ACKS='²'"),
        ({**BASE, "REDIS_REPLICA_ACK_TIMEOUT_MS": "0"}, "REDIS_REPLICA_ACK_TIMEOUT_MS='0' is not a positive"),
        ({**BASE, "REDIS_REPLICA_ACK_TIMEOUT_MS": "²"}, "REDIS_REPLICA_ACK_TIMEOUT_MS='²'"),
    ],
)
def test_bad_setting_names_itself(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_replica_acks_are_off_by_default() -> None:
    s = Settings.from_env(BASE)
    assert s.apply_options == {"min_replica_acks": 0, "replica_ack_timeout_ms": 100, "fill_margin_ms": 1000}


def test_replica_acks_configured() -> None:
    s = Settings.from_env({**BASE, "REDIS_MIN_REPLICA_ACKS": " 2 ", "REDIS_REPLICA_ACK_TIMEOUT_MS": "250"})
    assert s.apply_options == {"min_replica_acks": 2, "replica_ack_timeout_ms": 250, "fill_margin_ms": 1000}
    assert Settings.from_env({**BASE, "REDIS_MIN_REPLICA_ACKS": "0"}).redis_min_replica_acks == 0


def test_password_in_url_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"REDIS_URL": "http://:hunter2@host"})
    assert "hunter2" not in str(err.value)


def test_auth_secret_forms() -> None:
    assert parse_auth_secret("tok") == {"password": "tok"}
    assert parse_auth_secret('{"username": "u", "password": "p"}') == {"username": "u", "password": "p"}
    with pytest.raises(ConfigError, match='no "password"'):
        parse_auth_secret('{"user": "u"}')
    with pytest.raises(ConfigError) as err:
        parse_auth_secret("{not json hunter2")
    assert "hunter2" not in str(err.value) and err.value.__cause__ is None


def test_missing_aws_region_is_one_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamcache import aws

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    aws.client.cache_clear()
    with pytest.raises(ConfigError, match="set AWS_REGION or AWS_DEFAULT_REGION"):
        aws.client("dynamodb")
    aws.client.cache_clear()


def test_fill_clock_margin_default_and_configured() -> None:
    assert Settings.from_env(BASE).fill_clock_margin_ms == 1000
    assert Settings.from_env({**BASE, "FILL_CLOCK_MARGIN_MS": "0"}).fill_clock_margin_ms == 0
    assert Settings.from_env({**BASE, "FILL_CLOCK_MARGIN_MS": " 2500 "}).fill_clock_margin_ms == 2500


@pytest.mark.parametrize("raw", ["-1", "1.5", "one", "²"])
def test_bad_fill_clock_margin_names_itself(raw: str) -> None:
    with pytest.raises(ConfigError, match=f"FILL_CLOCK_MARGIN_MS={raw!r} is not a whole number"):
        Settings.from_env({**BASE, "FILL_CLOCK_MARGIN_MS": raw})


@pytest.mark.parametrize(
    "query",
    [
        "ssl_cert_reqs=none",
        "ssl_check_hostname=false",
        "ssl_ca_certs=/tmp/attacker.pem",
        "ssl_min_version=2",
        "ssl_exclude_verify_flags=VERIFY_X509_STRICT",
        "db=0&SSL_CERT_REQS=optional",
    ],
)
def test_tls_options_in_redis_url_are_refused(query: str) -> None:
    """redis-py would let them override certificate checks behind REDIS_TLS_INSECURE's back."""
    url = f"rediss://:hunter2@h:6379/0?{query}"
    with pytest.raises(ConfigError, match=r"(?i)REDIS_URL sets TLS option 'ssl_") as err:
        Settings.from_env({"REDIS_URL": url})
    assert "REDIS_TLS_INSECURE" in str(err.value) and "hunter2" not in str(err.value)
    with pytest.raises(ConfigError, match="TLS option"):
        Settings(redis_url=url)  # built directly too


def test_non_tls_url_options_are_still_accepted() -> None:
    assert Settings.from_env({"REDIS_URL": "rediss://h:6379/0?socket_keepalive=true"}).uses_tls


@pytest.mark.parametrize(
    "url",
    ["rediss://default:hunter2@h:6379/0", "redis://:hunter2@h:6379/0", "redis://h:6379/0?password=hunter2"],
)
def test_a_password_in_redis_url_never_appears_in_repr(url: str) -> None:
    settings = Settings.from_env({"REDIS_URL": url, "KEY_SCHEMA": '{"t": ["id"]}'})
    for text in (repr(settings), str(settings), f"{settings}"):
        assert "hunter2" not in text
        assert "h:6379" in text and "***" in text and "key_schema={'t': ('id',)}" in text
    assert settings.redis_url == url  # the client still gets the real URL


def test_aws_region_alone_is_enough_outside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore reads only AWS_DEFAULT_REGION; the region error names AWS_REGION too, so both work."""
    from streamcache import aws

    for name in ("AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    aws.client.cache_clear()
    try:
        assert aws.client("dynamodb").meta.region_name == "eu-west-3"
    finally:
        aws.client.cache_clear()


def test_aws_region_alone_reaches_the_streams_client_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamcache.local.stream import streams_client

    for name in ("AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_REGION", "ap-south-2")
    assert streams_client().meta.region_name == "ap-south-2"
