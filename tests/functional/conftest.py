"""Functional fixtures: the invalidator handler wired to a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

import invalidator.handler as invalidator_handler
from streamcache.local import tables
from tests.functional.readerkit import dynamodb, read, reader_env  # noqa: F401 (the reader's fixtures)

KEY_SCHEMA = '{"orders": ["pk", "sk"], "users": ["id"], "blobs": ["b"]}'


@pytest.fixture
def invalidator_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[dict[str, str]]:
    env = {"REDIS_URL": redis_url, "KEY_SCHEMA": KEY_SCHEMA, "CACHE_TTL_SECONDS": "600"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    invalidator_handler.reset()
    yield env
    invalidator_handler.reset()


@pytest.fixture
def invoke(invalidator_env: dict[str, str]):
    def call(event: Any) -> dict[str, Any]:
        return invalidator_handler.handler(event, None)

    return call


@pytest.fixture
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def create_orders_table(client: Any) -> None:
    """``orders`` (pk S, sk N) with a NEW_AND_OLD_IMAGES stream, through a boto3 DynamoDB client."""
    tables.create_orders_table(client)
