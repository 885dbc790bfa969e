"""Fixtures and event builders shared by the reader's functional tests.

moto for DynamoDB (in-process), the real redis-server from tests/conftest.py,
and the invalidator handler on the same Redis, so races can be played out.
Import the fixtures into a test module: ``from tests.functional.readerkit import *``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import invalidator.handler as invalidator_handler
import reader.handler as reader_handler
from reader import observe
from reader import runtime as reader_runtime
from streamcache import aws
from streamcache.local import events
from streamcache.local.tables import create_table

# name -> [(attribute, key type, attribute type)]
TABLES = {
    "orders": [("pk", "HASH", "S"), ("sk", "RANGE", "N")],
    "users": [("id", "HASH", "S")],
    "blobs": [("b", "HASH", "B")],
}
BIG = "12345678901234567890123456789012345678"  # 38 significant digits


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch, fake_aws: None) -> Iterator[Any]:
    """moto DynamoDB with the three tables; the cached boto3 client is never reused across mocks."""
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for table, keys in TABLES.items():
            create_table(client, table, [(n, t) for n, _, t in keys], stream=False)
        yield client
    aws.client.cache_clear()


@pytest.fixture
def reader_env(
    invalidator_env: dict[str, str], dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Reader and invalidator share REDIS_URL, KEY_SCHEMA, TABLE_NAME, ALLOWED_TABLES."""
    env = {
        **invalidator_env,
        "TABLE_NAME": "orders",
        "ALLOWED_TABLES": "orders,users,blobs,ghosts",
        "NEGATIVE_CACHE_TTL_SECONDS": "30",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reader_runtime.reset()
    observe.pending.clear()  # nothing due from another test: a flush takes the cache's counters with it
    invalidator_handler.reset()
    yield env
    reader_runtime.reset()


Read = Callable[..., dict[str, Any]]


@pytest.fixture
def read(reader_env: dict[str, str]) -> Read:
    """``read({"pk": "u1", "sk": 1}, format="dynamodb", table="orders")`` through the handler."""

    def call(key: Any, **fields: Any) -> dict[str, Any]:
        return reader_handler.handler({"key": key, **fields}, None)

    return call


def deliver(*records: dict[str, Any]) -> None:
    """Hand stream records to the invalidator, as Lambda's event source mapping would."""
    response = invalidator_handler.handler(events.event(records), None)
    assert response == {"batchItemFailures": []}


def boto3_item(item: dict[str, Any]) -> dict[str, Any]:
    """A stream-form item for put_item: boto3 wants bytes for binary."""

    def value(v: dict[str, Any]) -> dict[str, Any]:
        ((t, raw),) = v.items()
        if t == "B":
            return {"B": base64.b64decode(raw)}
        if t == "BS":
            return {"BS": [base64.b64decode(b) for b in raw]}
        if t == "M":
            return {"M": boto3_item(raw)}
        if t == "L":
            return {"L": [value(x) for x in raw]}
        return v

    return {k: value(v) for k, v in item.items()}


class CountingTable:
    """Wraps the reader's table port: counts GetItem calls, runs ``after`` once a read returns."""

    def __init__(self, inner: Any, after: Callable[[], None] | None = None) -> None:
        self.inner, self.after, self.calls = inner, after, 0

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        self.calls += 1
        item = self.inner.get(table, key)
        if self.after is not None:
            after, self.after = self.after, None
            after()
        return item


def count_reads(after: Callable[[], None] | None = None) -> CountingTable:
    """Install a ``CountingTable`` on the execution environment's reader."""
    reads = reader_runtime.runtime().reads
    counting = CountingTable(reads.table, after)
    reads.table = counting
    return counting


def function_url_event(method: str, path: str, query: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "abcdefg.lambda-url.us-east-1.on.aws", "user-agent": "curl/8"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdefg",
            "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefg",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:11:00:00 +0000",
            "timeEpoch": 1795604400000,
        },
        "isBase64Encoded": False,
    }


def http_api_event(method: str, path: str, query: str, stage: str = "prod") -> dict[str, Any]:
    staged = f"/{stage}{path}"
    event = function_url_event(method, staged, query)
    event["routeKey"] = "GET /items/{table}"
    event["pathParameters"] = {"table": path.rsplit("/", 1)[-1]}
    context = event["requestContext"]
    context.update(
        apiId="a1b2c3",
        domainName="a1b2c3.execute-api.us-east-1.amazonaws.com",
        domainPrefix="a1b2c3",
        routeKey="GET /items/{table}",
        stage=stage,
    )
    event["headers"]["host"] = context["domainName"]
    return event
