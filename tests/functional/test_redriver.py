"""The redriver Lambda on the failure queue: moto (SQS + DynamoDB Streams) and a real redis-server."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis

import redriver.handler as redriver_handler
from streamcache.keys import cache_key
from streamcache.local.demo import typed_key
from streamcache.local.embedded import embedded_aws
from streamcache.local.inspect import holding
from streamcache.local.redis_server import RedisServer
from streamcache.streams import DynamoDBStream, streams_client

from .conftest import create_orders_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def aws() -> Iterator[Any]:
    with embedded_aws("in-process"):
        dynamodb = boto3.client("dynamodb")
        create_orders_table(dynamodb)
        yield dynamodb


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    redriver_handler.reset()
    yield monkeypatch
    redriver_handler.reset()


def stream_records(dynamodb: Any) -> tuple[DynamoDBStream, str, list[dict[str, Any]]]:
    arn = dynamodb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
    stream = DynamoDBStream(arn, streams_client())
    (shard,) = stream.shards()
    return stream, shard.shard_id, stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 100).records


def onfailure(stream: DynamoDBStream, shard_id: str, first: dict[str, Any], last: dict[str, Any]) -> str:
    info = {
        "shardId": shard_id,
        "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
        "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
        "streamArn": stream.arn,
    }
    return json.dumps({"requestContext": {"condition": "RetryAttemptsExhausted"}, "DDBStreamBatchInfo": info})


def sqs_event(*bodies: str) -> dict[str, Any]:
    """Send the bodies through a moto queue and build the SQS event Lambda would deliver from it."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="streamcache-invalidator-onfailure")["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == len(bodies)
    return {"Records": [sqs_record(m) for m in messages]}


def sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "eventSource": "aws:sqs",
    }


def name_of(key: tuple[str, int]) -> str:
    return cache_key("orders", typed_key(key), ("pk", "sk"))


def test_every_key_of_the_failed_range_is_invalidated_and_the_message_is_done(
    aws: Any, env: pytest.MonkeyPatch, redis_url: str
) -> None:
    # GIVEN three writes, the first two named by an OnFailure record, and the cache holding stale entries
    for key in (("a", 1), ("b", 1), ("c", 1)):
        aws.put_item(TableName="orders", Item={**typed_key(key), "v": {"S": "new"}})
    stream, shard_id, records = stream_records(aws)
    env.setenv("REDIS_URL", redis_url)
    cache = redis.Redis.from_url(redis_url)
    event = sqs_event(onfailure(stream, shard_id, records[0], records[1]))
    # WHEN the redriver handles the SQS event
    response = redriver_handler.handler(event, None)
    # THEN nothing is reported (SQS deletes the message) and both keys are invalidated at their version
    assert response == {"batchItemFailures": []}
    for record, key in zip(records[:2], (("a", 1), ("b", 1)), strict=True):
        held = holding(cache, name_of(key))
        assert (held["state"], held["version"]) == ("invalidated", record["dynamodb"]["SequenceNumber"])
    assert holding(cache, name_of(("c", 1)))["state"] == "absent"  # outside the range: untouched
    cache.close()


def test_messages_it_cannot_finish_are_reported_so_sqs_keeps_them(
    aws: Any, env: pytest.MonkeyPatch, own_redis: RedisServer
) -> None:
    # GIVEN a good OnFailure record, one that is not an OnFailure record, and a Redis that refuses writes
    aws.put_item(TableName="orders", Item={**typed_key(("a", 1)), "v": {"S": "new"}})
    stream, shard_id, records = stream_records(aws)
    env.setenv("REDIS_URL", own_redis.url)
    event = sqs_event(onfailure(stream, shard_id, records[0], records[0]), '{"Records": []}')
    cache = redis.Redis.from_url(own_redis.url)
    cache.config_set("min-replicas-to-write", 1)
    # WHEN the redriver handles them
    response = redriver_handler.handler(event, None)
    # THEN both messages are reported: the refused write and the foreign message stay on the queue
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"]
    )
    # AND once Redis takes writes again, the same event is done
    cache.config_set("min-replicas-to-write", 0)
    event["Records"] = (
        event["Records"][:1] if "DDBStreamBatchInfo" in event["Records"][0]["body"] else event["Records"][1:]
    )
    assert redriver_handler.handler(event, None) == {"batchItemFailures": []}
    cache.close()


def test_redis_down_reports_every_message(aws: Any, env: pytest.MonkeyPatch, own_redis: RedisServer) -> None:
    aws.put_item(TableName="orders", Item={**typed_key(("a", 1)), "v": {"S": "new"}})
    stream, shard_id, records = stream_records(aws)
    env.setenv("REDIS_URL", own_redis.url)
    event = sqs_event(onfailure(stream, shard_id, records[0], records[0]))
    own_redis.stop()
    response = redriver_handler.handler(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_the_redriver_ships_without_laptop_tools() -> None:
    """The function zip carries the core, not streamcache/local/: the adapter must not need it."""
    for path in (ROOT / "redriver").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in modules if m.startswith(("streamcache.local", "invalidator", "reader"))}, path
    for core in ("streamcache/redrive.py", "streamcache/streams.py"):
        assert "streamcache.local" not in (ROOT / core).read_text(encoding="utf-8"), core


def test_the_streams_endpoint_setting_is_where_ranges_are_re_read(
    aws: Any, env: pytest.MonkeyPatch, redis_url: str
) -> None:
    """In a VPC the Streams interface endpoint has no private DNS: the function is told its DNS name."""
    aws.put_item(TableName="orders", Item={**typed_key(("a", 1)), "v": {"S": "new"}})
    stream, shard_id, records = stream_records(aws)
    env.setenv("REDIS_URL", redis_url)
    env.setenv(redriver_handler.STREAMS_ENDPOINT_URL, "http://127.0.0.1:9")  # nothing listens there
    event = sqs_event(onfailure(stream, shard_id, records[0], records[0]))
    response = redriver_handler.handler(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
