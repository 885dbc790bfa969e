"""Configuration: one frozen dataclass built from the environment once, at init.

Every variable name is a constant here (the README's configuration table). A missing or
malformed setting raises ``ConfigError`` with one line naming it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict
from urllib.parse import parse_qsl, urlencode, urlsplit

from streamcache.errors import ConfigError

REDIS_URL = "REDIS_URL"
REDIS_CLUSTER = "REDIS_CLUSTER"
REDIS_AUTH_SECRET_ARN = "REDIS_AUTH_SECRET_ARN"
REDIS_TLS_INSECURE = "REDIS_TLS_INSECURE"
REDIS_TLS_CA_FILE = "REDIS_TLS_CA_FILE"
REDIS_TIMEOUT_MS = "REDIS_TIMEOUT_MS"
REDIS_MIN_REPLICA_ACKS = "REDIS_MIN_REPLICA_ACKS"
REDIS_REPLICA_ACK_TIMEOUT_MS = "REDIS_REPLICA_ACK_TIMEOUT_MS"
CACHE_TTL_SECONDS = "CACHE_TTL_SECONDS"
FILL_CLOCK_MARGIN_MS = "FILL_CLOCK_MARGIN_MS"
NEGATIVE_CACHE_TTL_SECONDS = "NEGATIVE_CACHE_TTL_SECONDS"
CACHE_KEY_PREFIX = "CACHE_KEY_PREFIX"
KEY_SCHEMA = "KEY_SCHEMA"
TABLE_NAME = "TABLE_NAME"
ALLOWED_TABLES = "ALLOWED_TABLES"
DYNAMODB_ENDPOINT_URL = "DYNAMODB_ENDPOINT_URL"
NEAR_CACHE_ITEMS = "NEAR_CACHE_ITEMS"
NEAR_CACHE_MAX_BYTES = "NEAR_CACHE_MAX_BYTES"
NEAR_CACHE_MAX_STALENESS_MS = "NEAR_CACHE_MAX_STALENESS_MS"
QUERY_CACHE_TABLES = "QUERY_CACHE_TABLES"
INDEX_SETTLE_MS = "INDEX_SETTLE_MS"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}
_REDIS_SCHEMES = {"redis", "rediss", "unix"}
# redis-py turns URL query options into connection arguments that override ours:
# ?ssl_cert_reqs=none would switch certificate checks off behind REDIS_TLS_INSECURE's back.
_TLS_QUERY_PREFIX = "ssl"

KeySchemas = Mapping[str, tuple[str, ...]]


class ApplyOptions(TypedDict, total=False):
    """``apply_commands``' keyword arguments that come from the settings."""

    min_replica_acks: int
    replica_ack_timeout_ms: int
    fill_margin_ms: int


@dataclass(frozen=True)
class Settings:
    redis_url: str = field(repr=False)  # may hold a password: repr shows ``redis_url_redacted``
    redis_cluster: bool = False
    redis_auth_secret_arn: str | None = None
    redis_tls_insecure: bool = False
    redis_tls_ca_file: str | None = None
    redis_timeout_ms: int | None = None
    redis_min_replica_acks: int = 0  # 0: writes are not confirmed by replicas (no WAIT)
    redis_replica_ack_timeout_ms: int = 100
    cache_ttl_seconds: int = 3600
    negative_cache_ttl_seconds: int = 60
    # How much later than a reader's fill (Redis clock) a record must be created
    # (DynamoDB clock) to end the key's fill mode: covers the skew between the clocks.
    fill_clock_margin_ms: int = 1000
    key_prefix: str = ""
    key_schema: KeySchemas = field(default_factory=dict)
    table_name: str | None = None
    allowed_tables: frozenset[str] = frozenset()
    dynamodb_endpoint_url: str | None = None
    # The near cache (process memory, kept coherent by Redis invalidation pushes): 0 items = off.
    near_cache_items: int = 10_000
    near_cache_max_bytes: int = 32 * 1024 * 1024
    near_cache_max_staleness_ms: int = 100
    # Tables whose Query results are cached (the invalidator then keeps partition markers).
    query_cache_tables: frozenset[str] = frozenset()
    # A GSI result is filled only when its partition's newest marker is older than this:
    # DynamoDB updates a GSI asynchronously, apart from the stream.
    index_settle_ms: int = 2000

    def __post_init__(self) -> None:
        _refuse_tls_options(self.redis_url)  # however the settings were made (from_env, a library caller)

    @property
    def apply_options(self) -> ApplyOptions:
        """``apply_commands``' keyword arguments: replica confirmation (WAIT) and the fill-mode margin."""
        return {
            "min_replica_acks": self.redis_min_replica_acks,
            "replica_ack_timeout_ms": self.redis_replica_ack_timeout_ms,
            "fill_margin_ms": self.fill_clock_margin_ms,
        }

    @property
    def redis_url_redacted(self) -> str:
        return redact_url(self.redis_url)

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
        return f"Settings(redis_url={self.redis_url_redacted!r}, {fields})"

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.redis_url).scheme == "rediss"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        table_name = env.get(TABLE_NAME) or None
        return cls(
            redis_url=_redis_url(env.get(REDIS_URL, "")),
            redis_cluster=_bool(env, REDIS_CLUSTER),
            redis_auth_secret_arn=_secret_arn(env.get(REDIS_AUTH_SECRET_ARN, "")),
            redis_tls_insecure=_bool(env, REDIS_TLS_INSECURE),
            redis_tls_ca_file=_ca_file(env.get(REDIS_TLS_CA_FILE, "")),
            redis_timeout_ms=_optional_positive_int(env, REDIS_TIMEOUT_MS),
            redis_min_replica_acks=_non_negative_int(env, REDIS_MIN_REPLICA_ACKS, 0),
            redis_replica_ack_timeout_ms=_positive_int(env, REDIS_REPLICA_ACK_TIMEOUT_MS, 100),
            cache_ttl_seconds=_positive_int(env, CACHE_TTL_SECONDS, 3600),
            negative_cache_ttl_seconds=_positive_int(env, NEGATIVE_CACHE_TTL_SECONDS, 60),
            fill_clock_margin_ms=_non_negative_int(env, FILL_CLOCK_MARGIN_MS, 1000),
            key_prefix=env.get(CACHE_KEY_PREFIX, ""),
            key_schema=parse_key_schema(env.get(KEY_SCHEMA, "")),
            table_name=table_name,
            allowed_tables=_allowed_tables(env.get(ALLOWED_TABLES, ""), table_name),
            dynamodb_endpoint_url=env.get(DYNAMODB_ENDPOINT_URL) or None,
            near_cache_items=_non_negative_int(env, NEAR_CACHE_ITEMS, 10_000),
            near_cache_max_bytes=_positive_int(env, NEAR_CACHE_MAX_BYTES, 32 * 1024 * 1024),
            near_cache_max_staleness_ms=_positive_int(env, NEAR_CACHE_MAX_STALENESS_MS, 100),
            query_cache_tables=_names(env.get(QUERY_CACHE_TABLES, "")),
            index_settle_ms=_non_negative_int(env, INDEX_SETTLE_MS, 2000),
        )


def _redis_url(raw: str) -> str:
    if not raw:
        raise ConfigError(f"{REDIS_URL} is required: set it to redis://host:6379/0 (rediss:// for TLS)")
    scheme = urlsplit(raw).scheme
    if scheme not in _REDIS_SCHEMES:
        # The URL may embed a password: name the scheme only, never echo the URL.
        raise ConfigError(
            f"{REDIS_URL} has scheme {scheme or '(none)'!r}; expected redis://, rediss:// or unix://"
        )
    return raw


def _refuse_tls_options(url: str) -> None:
    """TLS is configured by REDIS_TLS_CA_FILE and REDIS_TLS_INSECURE only, never by the URL."""
    options = [name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    tls = sorted({name for name in options if name.lower().startswith(_TLS_QUERY_PREFIX)})
    if tls:
        raise ConfigError(
            f"{REDIS_URL} sets TLS option {tls[0]!r} in its query string; remove it: certificates are "
            f"always verified (CA bundle: {REDIS_TLS_CA_FILE}; local testing only: {REDIS_TLS_INSECURE}=true)"
        )


def redact_url(url: str) -> str:
    """The URL with any password (in the userinfo or a ``password=`` option) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is not None:
        user, host = parts.username or "", parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    options = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "password" for name, _ in options):
        hidden = [(name, "***" if name == "password" else value) for name, value in options]
        parts = parts._replace(query=urlencode(hidden, safe="*/"))
    return parts.geturl()


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _optional_positive_int(env, name)
    return default if value is None else value


def _non_negative_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{name}={raw!r} is not a whole number (0 or more)")
    return int(raw)


def _optional_positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
        raise ConfigError(f"{name}={raw!r} is not a positive whole number")
    return int(raw)


def _secret_arn(raw: str) -> str | None:
    if not raw:
        return None
    if not raw.startswith("arn:") or ":secretsmanager:" not in raw:
        raise ConfigError(f"{REDIS_AUTH_SECRET_ARN}={raw!r} is not a Secrets Manager secret ARN")
    return raw


def _ca_file(raw: str) -> str | None:
    if not raw:
        return None
    if not os.path.isfile(raw):
        raise ConfigError(f"{REDIS_TLS_CA_FILE}={raw!r}: no such file (a PEM bundle of CA certificates)")
    return raw


def _allowed_tables(raw: str, table_name: str | None) -> frozenset[str]:
    names = _names(raw)
    return names if names or not table_name else frozenset({table_name})


def _names(raw: str) -> frozenset[str]:
    """A comma list of table names."""
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def parse_key_schema(raw: str) -> dict[str, tuple[str, ...]]:
    """Parse ``{"table": ["hashAttr", "rangeAttr"]}`` (hash-only: one name)."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{KEY_SCHEMA} is not valid JSON ({err.msg} at char {err.pos})") from err
    if not isinstance(data, dict):
        raise ConfigError(f'{KEY_SCHEMA} must be a JSON object like {{"orders": ["pk", "sk"]}}')
    return {str(table): _key_names(table, names) for table, names in data.items()}


def _key_names(table: str, names: object) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    valid = (
        isinstance(names, list)
        and len(names) in (1, 2)
        and all(isinstance(n, str) and n for n in names)
        and len(set(names)) == len(names)
    )
    if not valid:
        raise ConfigError(
            f"{KEY_SCHEMA} entry for table {table!r} must be [hashAttr] or [hashAttr, rangeAttr]"
        )
    assert isinstance(names, list)
    return tuple(names)
