"""The stack's RBAC access strings on a real redis-server: valid ACL syntax, and enough.

Each user is created from the template's own access string (prefix ``app:``);
then the invalidator handler applies a batch (and consistency samples) as the
invalidator user, and the reader handler misses, leases, fills and hits as the
reader user. A string that lacks a command the code needs fails here, not in
production; one that grants FLUSHALL or keys outside the prefix fails too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import redis
from moto import mock_aws

import invalidator.handler as invalidator_handler
from reader import handler as reader_handler
from reader import runtime as reader_runtime
from streamcache.keys import cache_key
from streamcache.local import events
from streamcache.local.redis_server import RedisServer
from streamcache.local.tables import create_table
from streamcache.ops import sampling
from streamcache.ops.sampling import samples_key

PREFIX = "app:"
PASSWORD = "p" * 32
ORDER = {"pk": {"S": "u1"}, "sk": {"N": "42"}}


def _access_string(template: dict[str, Any], user: str) -> list[str]:
    text, variables = template["Resources"][user]["Properties"]["AccessString"]["Fn::Sub"]
    commands = template["Mappings"]["CacheAccess"][variables["Commands"]["Fn::FindInMap"][1]]["Commands"]
    return text.replace("${CacheKeyPrefix}", PREFIX).replace("${Commands}", commands).split()


@pytest.fixture
def server(own_redis: RedisServer, template: dict[str, Any]) -> Iterator[RedisServer]:
    admin = redis.Redis.from_url(own_redis.url)
    for user in ("InvalidatorCacheUser", "ReaderCacheUser", "RedriverCacheUser", "CheckerCacheUser"):
        name = user.removesuffix("CacheUser").lower()
        # "reset" is ours (a clean user); ElastiCache refuses it inside an access string
        admin.execute_command(
            "ACL", "SETUSER", name, "reset", *_access_string(template, user), f">{PASSWORD}"
        )
    admin.close()
    yield own_redis


def _url(server: RedisServer, user: str) -> str:
    return server.url.replace("redis://", f"redis://{user}:{PASSWORD}@", 1)


def test_invalidator_user_applies_a_batch_and_its_consistency_samples(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = redis.Redis.from_url(server.url)
    admin.zadd(samples_key(PREFIX), {b"armed": float("inf")})  # a checker armed the sample set
    env = {"REDIS_URL": _url(server, "invalidator"), "KEY_SCHEMA": '{"orders": ["pk", "sk"]}',
           "CACHE_KEY_PREFIX": PREFIX, "CONSISTENCY_SAMPLE_RATE": "1"}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    invalidator_handler.reset()
    sampling.configure(None)  # the sampler is built once per process: rebuild it from this environment
    try:
        record = events.record("orders", "INSERT", ORDER, events.FIRST_SEQUENCE, new=events.item(ORDER))
        assert invalidator_handler.handler(events.event([record]), None) == {"batchItemFailures": []}
    finally:
        invalidator_handler.reset()
        sampling.configure(None)
    assert admin.exists(cache_key("orders", ORDER, ("pk", "sk"), PREFIX))
    assert admin.zcard(samples_key(PREFIX)) == 2  # the marker and one sample
    admin.close()


@pytest.mark.parametrize("user", ["invalidator", "reader", "redriver"])
def test_function_users_cannot_flush_or_leave_the_prefix(server: RedisServer, user: str) -> None:
    client = redis.Redis.from_url(_url(server, user))
    try:
        for command in (("FLUSHALL",), ("GET", "other:key"), ("KEYS", "*"), ("CONFIG", "GET", "*")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
        assert client.ping()
    finally:
        client.close()


@pytest.fixture
def orders_table(fake_aws: None) -> Iterator[None]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "orders", [("pk", "S"), ("sk", "N")], stream=False)
        client.put_item(TableName="orders", Item={**ORDER, "total": {"N": "5"}})
        yield


def test_reader_user_misses_leases_fills_then_hits(
    server: RedisServer, orders_table: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"REDIS_URL": _url(server, "reader"), "KEY_SCHEMA": '{"orders": ["pk", "sk"]}',
           "CACHE_KEY_PREFIX": PREFIX, "TABLE_NAME": "orders", "ALLOWED_TABLES": "orders",
           "POWERTOOLS_TRACE_DISABLED": "true"}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    reader_runtime.reset()
    try:
        first = reader_handler.handler({"key": {"pk": "u1", "sk": 42}}, None)
        second = reader_handler.handler({"key": {"pk": "u1", "sk": 42}}, None)
    finally:
        reader_runtime.reset()
    # a denied lease or fill would fall back to DynamoDB silently: the second answer tells
    assert (first["found"], first["source"]) == (True, "dynamodb")
    assert (second["found"], second["source"], second["item"]["total"]) == (True, "cache", 5)
