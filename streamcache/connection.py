"""One Redis client per execution environment, built from ``Settings``.

Timeouts and retries are explicit objects (redis-py's defaults changed across
major versions). A dropped connection, a timeout, or ``READONLY`` from a
primary demoted by a failover closes the connection and is retried (new
connection, DNS re-resolved: the endpoint now names the new primary) as many
times as the function's ``Timeouts`` allow.

TLS (``rediss://``) verifies certificates against the system trust store, or
REDIS_TLS_CA_FILE; REDIS_TLS_INSECURE=true turns verification off for local
testing only, and says so loudly.

AUTH: the token (or RBAC username + password) comes from Secrets Manager,
read once per execution environment by ``SecretCredentials``. When Redis
rejects it (token rotated), the connection re-reads the secret once and tries
again. The token never appears in logs, errors or metrics.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.connection import Connection, ConnectionPool, Encoder, SSLConnection
from redis.credentials import CredentialProvider
from redis.exceptions import AuthenticationError, ReadOnlyError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from streamcache.errors import ConfigError
from streamcache.settings import REDIS_AUTH_SECRET_ARN, Settings

log = logging.getLogger(__name__)

# Errors after which a fresh connection may succeed. READONLY: a failover
# demoted the node this connection reached; a new connection finds the new primary.
RETRIED_ERRORS = (RedisConnectionError, RedisTimeoutError, socket.timeout, ReadOnlyError)

# A rejected token re-reads the secret at most this often (a wrong token must
# not turn every connection attempt into a Secrets Manager call).
RELOAD_MIN_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Timeouts:
    """Per-function budget: the reader must fall back fast, the invalidator may wait a bit."""

    connect_s: float
    socket_s: float
    retries: int


INVALIDATOR_TIMEOUTS = Timeouts(connect_s=1.0, socket_s=2.0, retries=2)
READER_TIMEOUTS = Timeouts(connect_s=0.05, socket_s=0.05, retries=0)


def redis_client(settings: Settings, timeouts: Timeouts) -> Any:
    """A ``redis.Redis`` (or ``RedisCluster`` when REDIS_CLUSTER=true). Connects lazily."""
    options = client_options(settings, timeouts)
    if settings.redis_cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(settings.redis_url, connection_pool_class=ReauthPool, **options)
    import redis

    return redis.Redis(connection_pool=ReauthPool.from_url(settings.redis_url, **options))


def redis_client_or_deferred(settings: Settings, timeouts: Timeouts) -> Any:
    """``redis_client``, or a ``DeferredClient`` when it cannot be built now.

    A single-node client connects lazily, but ``RedisCluster`` reads the slot map
    when built and raises if no node answers: a cluster that is down at cold
    start must cost the reader a fallback to DynamoDB, not an error.
    """
    try:
        return redis_client(settings, timeouts)
    except RedisClusterException as err:
        log.warning("Redis cluster unreachable at init (%s): will retry on use", type(err).__name__)
        return DeferredClient(lambda: redis_client(settings, timeouts))


class DeferredClient:
    """Stands in for a client that could not be built yet; each use tries again.

    Until a build succeeds every call raises ``redis.ConnectionError``, which
    callers already treat as "Redis unreachable" (the reader's breaker limits
    how often that is tried). Scripts register locally: a SHA needs no server.
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._client: Any = None

    def register_script(self, script: str) -> Script:
        return Script(self, script)  # type: ignore[arg-type]  # duck-typed: evalsha, script_load, get_encoder

    def get_encoder(self) -> Encoder:
        return Encoder("utf-8", "strict", False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._built(), name)

    def _built(self) -> Any:
        if self._client is None:
            try:
                self._client = self._build()
            except RedisClusterException as err:
                raise RedisConnectionError(f"Redis cluster unreachable ({type(err).__name__})") from err
        return self._client


def client_options(settings: Settings, timeouts: Timeouts) -> dict[str, Any]:
    """Keyword arguments for redis-py: timeouts, retry, TLS and credentials."""
    if settings.redis_timeout_ms is not None:
        seconds = settings.redis_timeout_ms / 1000.0
        timeouts = Timeouts(seconds, seconds, timeouts.retries)
    options: dict[str, Any] = {
        "socket_connect_timeout": timeouts.connect_s,
        "socket_timeout": timeouts.socket_s,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), timeouts.retries, RETRIED_ERRORS),
        "health_check_interval": 30,
    }
    options.update(_tls_options(settings))
    if settings.redis_auth_secret_arn is not None:
        credentials = SecretCredentials(settings.redis_auth_secret_arn)
        credentials.get_credentials()  # read at init: a bad ARN or permission fails here, once
        options["credential_provider"] = credentials
    return options


def _tls_options(settings: Settings) -> dict[str, Any]:
    if not settings.uses_tls:
        return {}
    if settings.redis_tls_insecure:
        log.warning("REDIS_TLS_INSECURE=true: Redis TLS certificates are NOT verified (local testing only)")
        return {"ssl_cert_reqs": "none", "ssl_check_hostname": False}
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if settings.redis_tls_ca_file is not None:
        options["ssl_ca_certs"] = settings.redis_tls_ca_file
    return options


class SecretCredentials(CredentialProvider):
    """AUTH credentials from a Secrets Manager secret: read on first use, cached, re-read on rejection.

    One instance is shared by every connection of a client (redis-py deep-copies
    some connection options: ``__deepcopy__`` keeps this one shared).
    """

    def __init__(self, arn: str, clock: Any = time.monotonic) -> None:
        self._arn = arn
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: tuple[str, ...] | None = None
        self._read_at = float("-inf")
        self.reads = 0  # Secrets Manager calls made (tests, metrics)

    def __repr__(self) -> str:  # never the token
        return f"SecretCredentials(arn={self._arn!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretCredentials:
        return self

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        with self._lock:
            if self._credentials is None:
                self._read()
            assert self._credentials is not None
            return self._credentials  # type: ignore[return-value]

    def reload(self) -> bool:
        """Re-read after Redis rejected the credentials; True when they changed."""
        with self._lock:
            if self._clock() - self._read_at < RELOAD_MIN_INTERVAL_S:
                return False
            before = self._credentials
            try:
                self._read()
            except ConfigError as err:  # Secrets Manager unreachable: Redis' rejection stands
                log.warning("Redis rejected the AUTH credentials and %s", err)
                return False
            changed = self._credentials != before
        log.warning("Redis rejected the AUTH credentials; re-read %s (%s)", self._arn, _changed(changed))
        return changed

    def _read(self) -> None:
        self._read_at = self._clock()
        self.reads += 1
        options = parse_auth_secret(read_secret(self._arn))
        username = options.get("username")
        self._credentials = (username, options["password"]) if username else (options["password"],)


def _changed(changed: bool) -> str:
    return "changed: retrying" if changed else "unchanged: the secret itself is wrong"


class _ReauthMixin:
    """A connection whose handshake, when Redis rejects the credentials, re-reads them once."""

    credential_provider: Any

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except AuthenticationError:
            provider = self.credential_provider
            if not isinstance(provider, SecretCredentials) or not provider.reload():
                raise
            # The failed attempt already closed the socket: this is a fresh handshake.
            super().connect_check_health(*args, **kwargs)  # type: ignore[misc]


class ReauthConnection(_ReauthMixin, Connection):
    pass


class ReauthSSLConnection(_ReauthMixin, SSLConnection):
    pass


_REAUTH_CLASSES: dict[type, type] = {Connection: ReauthConnection, SSLConnection: ReauthSSLConnection}


class ReauthPool(ConnectionPool):
    """A connection pool whose TCP and TLS connections re-read rotated credentials.

    Given as ``connection_pool_class`` to ``RedisCluster`` too, so every node's
    pool gets the same behaviour.
    """

    def __init__(self, connection_class: type = Connection, **kwargs: Any) -> None:
        super().__init__(connection_class=_REAUTH_CLASSES.get(connection_class, connection_class), **kwargs)


def read_secret(arn: str) -> str:
    from streamcache.aws import client  # lazy boto3

    try:
        with _botocore_bodies_unlogged():
            return str(client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    except Exception as err:
        raise ConfigError(
            f"{REDIS_AUTH_SECRET_ARN}: cannot read the secret ({type(err).__name__}); "
            "check the ARN and the function's secretsmanager:GetSecretValue permission"
        ) from err


# At DEBUG, botocore logs every response body: GetSecretValue's holds the token.
_BODY_LOGGERS = ("botocore.parsers", "botocore.endpoint")


@contextmanager
def _botocore_bodies_unlogged() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _BODY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def parse_auth_secret(secret: str) -> dict[str, str]:
    """A bare token, or JSON ``{"password": ..., "username": ...}`` (RBAC)."""
    text = secret.strip()
    if not text.startswith("{"):
        return {"password": text}
    try:
        data = json.loads(text)
    except ValueError:
        # from None: a JSONDecodeError carries the whole document, i.e. the secret.
        raise ConfigError(f"{REDIS_AUTH_SECRET_ARN}: the secret is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("password"), str):
        raise ConfigError(f'{REDIS_AUTH_SECRET_ARN}: the secret JSON has no "password" string')
    options = {"password": data["password"]}
    if isinstance(data.get("username"), str):
        options["username"] = data["username"]
    return options
