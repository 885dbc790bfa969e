"""One Redis client per execution environment, built from ``Settings``.

Timeouts and retries are explicit objects (redis-py's defaults changed across
major versions). TLS verifies certificates unless REDIS_TLS_INSECURE=true,
which is for local testing only and logged loudly. The AUTH token comes
from Secrets Manager and never appears in logs, errors or metrics.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from streamcache.errors import ConfigError
from streamcache.settings import REDIS_AUTH_SECRET_ARN, Settings

log = logging.getLogger(__name__)


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
    if settings.redis_timeout_ms is not None:
        seconds = settings.redis_timeout_ms / 1000.0
        timeouts = Timeouts(seconds, seconds, timeouts.retries)
    options: dict[str, Any] = {
        "socket_connect_timeout": timeouts.connect_s,
        "socket_timeout": timeouts.socket_s,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), timeouts.retries),
        "health_check_interval": 30,
    }
    options.update(_auth_options(settings))
    options.update(_tls_options(settings))
    if settings.redis_cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(settings.redis_url, **options)
    import redis

    return redis.Redis.from_url(settings.redis_url, **options)


def _tls_options(settings: Settings) -> dict[str, Any]:
    if not settings.uses_tls:
        return {}
    if settings.redis_tls_insecure:
        log.warning("REDIS_TLS_INSECURE=true: Redis TLS certificates are NOT verified (local testing only)")
        return {"ssl_cert_reqs": "none", "ssl_check_hostname": False}
    return {"ssl_cert_reqs": "required"}


def _auth_options(settings: Settings) -> dict[str, Any]:
    if settings.redis_auth_secret_arn is None:
        return {}
    return parse_auth_secret(read_secret(settings.redis_auth_secret_arn))


def read_secret(arn: str) -> str:
    from streamcache.aws import client  # lazy boto3

    try:
        return str(client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    except Exception as err:
        raise ConfigError(
            f"{REDIS_AUTH_SECRET_ARN}: cannot read the secret ({type(err).__name__}); "
            "check the ARN and the function's secretsmanager:GetSecretValue permission"
        ) from err


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
