"""Shared fixtures: real redis-server processes we start ourselves, on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from streamcache.local.redis_server import RedisServer, running_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (ours: flushing it is fine)."""
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.script_flush()
    yield redis_server.url
    client.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for this test alone: tests that kill or restart it use this one."""
    with running_redis() as server:
        yield server
