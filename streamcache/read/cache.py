"""``Cache``: the Redis side of reads, shareable by many tables.

One Redis client (built from the environment like the reader's, or from
explicit arguments, or given ready-made), the protocol's scripts on it, one
circuit breaker, the expiry of fills and the key prefix, and the ``Counters``
of every read made through it. Building a ``Cache`` connects to nothing: the
first read does (a single node lazily; a cluster reads its slot map, and if
that fails, retries on later reads while they answer from DynamoDB).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

from streamcache.circuit import CircuitBreaker
from streamcache.codec import Typed
from streamcache.connection import READER_TIMEOUTS, Timeouts, redis_client_or_deferred
from streamcache.keys import cache_key
from streamcache.read.cacheaside import CacheAside, Counters, Expiry
from streamcache.read.dynamodb import Table
from streamcache.read.lookup import ReaderCache
from streamcache.read.near import near_cache_for
from streamcache.read.pages import Pages
from streamcache.settings import REDIS_URL, Settings

# Three consecutive Redis errors open the breaker; then one probe every 5 s.
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN_S = 5.0


class Cache:
    """The Redis side: settings, one client, scripts, a breaker, counters.

    ``Cache()`` reads the environment (REDIS_URL, REDIS_CLUSTER, TLS and AUTH
    settings, CACHE_TTL_SECONDS, NEGATIVE_CACHE_TTL_SECONDS, CACHE_KEY_PREFIX).
    ``Cache("redis://host:6379/0", key_prefix=..., near_cache_items=0)`` takes explicit settings
    instead, ``Cache(client=redis.Redis(...))`` a client you built yourself.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        cluster: bool | None = None,
        key_prefix: str | None = None,
        ttl_seconds: int | None = None,
        negative_ttl_seconds: int | None = None,
        near_cache_items: int | None = None,
        breaker: CircuitBreaker | None = None,
        timeouts: Timeouts = READER_TIMEOUTS,
        settings: Settings | None = None,
        port: Callable[..., ReaderCache] = ReaderCache,
    ) -> None:
        settings = settings if settings is not None else _settings(url, client)
        overrides: dict[str, Any] = {
            "redis_cluster": cluster,
            "key_prefix": key_prefix,
            "cache_ttl_seconds": ttl_seconds,
            "negative_cache_ttl_seconds": negative_ttl_seconds,
            "near_cache_items": near_cache_items,
        }
        self.settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        self.client = client if client is not None else redis_client_or_deferred(self.settings, timeouts)
        self.near = near_cache_for(self.client, self.settings)
        self.lookups = port(self.client, near=self.near)
        self.pages = Pages(self.client, self.near)  # the query cache (scripts registered locally)
        self.breaker = breaker or CircuitBreaker(BREAKER_THRESHOLD, BREAKER_COOLDOWN_S)
        self.expiry = Expiry(self.settings.cache_ttl_seconds, self.settings.negative_cache_ttl_seconds)
        self.counters = Counters()

    def __repr__(self) -> str:  # never the URL: it may hold a password
        return f"Cache(cluster={self.settings.redis_cluster}, key_prefix={self.settings.key_prefix!r})"

    def reads(self, table: Table) -> CacheAside:
        """Cache-aside over ``table``, sharing this cache's client, breaker and counters."""
        return CacheAside(self.lookups, table, self.breaker, self.expiry, self.counters)

    def key(self, table: str, key: Mapping[str, Typed], key_names: tuple[str, ...]) -> str:
        """The cache key of an item (the invalidator computes the same one)."""
        return cache_key(table, key, key_names, self.settings.key_prefix)


def _settings(url: str | None, client: Any) -> Settings:
    if url is None and client is None:
        return Settings.from_env()
    # Explicit arguments: the environment's other Redis settings do not apply.
    return Settings.from_env({REDIS_URL: url}) if url is not None else Settings(redis_url="")


_default: Cache | None = None
_default_lock = threading.Lock()


def default_cache() -> Cache:
    """The process's shared ``Cache`` from the environment, made on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Cache()
        return _default


def reset_default_cache() -> None:
    """Forget the shared ``Cache`` (tests, or after changing the environment)."""
    global _default
    with _default_lock:
        _default = None
