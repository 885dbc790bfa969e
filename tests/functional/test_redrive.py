"""Poison -> OnFailure destination -> redrive -> the key is invalidated (moto + a real redis-server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

import invalidator.handler as invalidator_handler
from streamcache.keys import cache_key
from streamcache.local import esm
from streamcache.local.demo import poisoned, typed_key
from streamcache.local.destination import DestinationError, FailureMessage, FileDestination, read_failures
from streamcache.local.embedded import embedded_aws
from streamcache.local.inspect import holding
from streamcache.local.redis_server import RedisServer
from streamcache.local.redrive import RedriveReport, redrive
from streamcache.local.stream import DynamoDBStream, stream_arn_of, streams_client
from streamcache.schema import KeySchemas

from .test_stream import table  # noqa: F401  (fixture)


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    invalidator_handler.reset()
    return redis_url


def test_poison_goes_to_the_destination_and_redrive_invalidates_its_key(
    table: Any,  # noqa: F811
    handler_env: str,
    tmp_path: Path,
) -> None:
    # GIVEN three versions of one item, the last one a poison record the invalidator raises on
    key = ("a-b", 1)
    for status in ("new", "paid", "shipped"):
        table.put_item(TableName="orders", Item={**typed_key(key), "status": {"S": status}})
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    (shard,) = stream.shards()
    records = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 10).records
    poison = records[-1]["dynamodb"]["SequenceNumber"]
    destination = FileDestination(tmp_path / "failures.jsonl")
    config = esm.MappingConfig(bisect_batch_on_function_error=True, report_batch_item_failures=True,
                               maximum_retry_attempts=1)  # fmt: skip
    handler = poisoned(invalidator_handler.handler, poison)

    # WHEN the mapping delivers the stream
    stats = esm.EventSourceMapping(stream, handler, config, destination=destination).run()

    # THEN the poison is discarded to the destination and the key is stale ("paid")
    assert stats.failures_sent == 1 and stats.bisects == 2  # 3 -> 1 + 2 -> 1 + 1
    cache = redis.Redis.from_url(handler_env)
    name = cache_key("orders", typed_key(key), ("pk", "sk"))
    assert holding(cache, name)["item"]["status"] == {"S": "paid"}

    # WHEN redrive reads the destination
    failures = read_failures(str(destination.path))
    client = streams_client()
    report = redrive(
        failures, lambda arn: DynamoDBStream(arn, client), cache, KeySchemas({"orders": ("pk", "sk")}, None)
    )

    # THEN the key is invalidated at the poison's version: the next read goes to DynamoDB
    assert report.ok and report.invalidated == 1 and report.keys == [name]
    held = holding(cache, name)
    assert (held["state"], held["version"]) == ("invalidated", poison)
    cache.close()


def test_redrive_leaves_a_newer_entry_alone(table: Any, handler_env: str, tmp_path: Path) -> None:  # noqa: F811
    table.put_item(TableName="orders", Item={**typed_key(("k", 1)), "v": {"S": "1"}})
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    esm.EventSourceMapping(stream, invalidator_handler.handler, esm.STACK_CONFIG).run()
    (shard,) = stream.shards()
    seq = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 10).records[0]["dynamodb"][
        "SequenceNumber"
    ]
    failure = {"DDBStreamBatchInfo": {"shardId": shard.shard_id, "startSequenceNumber": seq,
                                      "endSequenceNumber": seq, "streamArn": stream.arn}}  # fmt: skip
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(failure) + "\n")
    cache = redis.Redis.from_url(handler_env)
    report = redrive(
        read_failures(str(path)), lambda arn: stream, cache, KeySchemas({"orders": ("pk", "sk")}, None)
    )
    assert report.already_newer == 1 and report.invalidated == 0  # same version: already applied
    cache.close()


def test_a_file_that_is_not_onfailure_records_is_named(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"Records": []}\n')
    with pytest.raises(DestinationError, match=r"f.jsonl:1: not a DynamoDB stream OnFailure record"):
        read_failures(str(path))


def test_sqs_destination_round_trip() -> None:
    import boto3

    from streamcache.local.destination import destination_for

    with embedded_aws("in-process"):
        url = boto3.client("sqs").create_queue(QueueName="q")["QueueUrl"]
        info = {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "2", "streamArn": "arn"}
        payload = {"DDBStreamBatchInfo": info}
        destination_for(url).send(payload)
        (message,) = read_failures(url)
        assert message.payload == payload
        message.ack()
        assert read_failures(url) == []


# --- a failure message is deleted only once its keys are invalidated -----------------


def _one_failure(dynamodb: Any) -> tuple[list[FailureMessage], list[bool]]:
    """One OnFailure record naming the one record in the stream; ``acked`` records each ack()."""
    dynamodb.put_item(TableName="orders", Item={**typed_key(("k", 1)), "v": {"S": "1"}})
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    (shard,) = stream.shards()
    seq = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 10).records[0]["dynamodb"][
        "SequenceNumber"
    ]
    info = {"shardId": shard.shard_id, "startSequenceNumber": seq, "endSequenceNumber": seq,
            "streamArn": stream.arn}  # fmt: skip
    acked: list[bool] = []
    return [FailureMessage({"DDBStreamBatchInfo": info}, lambda: acked.append(True))], acked


def _redrive_one(failures: list[FailureMessage], cache: redis.Redis) -> RedriveReport:
    client = streams_client()
    return redrive(
        failures, lambda arn: DynamoDBStream(arn, client), cache, KeySchemas({"orders": ("pk", "sk")}, None)
    )


def test_redrive_with_redis_stopped_keeps_the_message_and_says_why(
    table: Any,  # noqa: F811
    own_redis: RedisServer,
    tmp_path: Path,
) -> None:
    # GIVEN a failure message and a Redis that is not running
    failures, acked = _one_failure(table)
    cache = redis.Redis.from_url(own_redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    own_redis.stop()
    # WHEN redrive runs
    report = _redrive_one(failures, cache)
    # THEN the message is not acknowledged (it is the only record of the keys to invalidate)
    assert acked == []
    assert not report.ok and report.invalidated == 0
    assert any("ConnectionError" in e and "orders-k-1" in e for e in report.errors), report.errors
    cache.close()


def test_redrive_with_a_refused_write_keeps_the_message_and_says_why(
    table: Any,  # noqa: F811
    own_redis: RedisServer,
    tmp_path: Path,
) -> None:
    # GIVEN a Redis that refuses writes (it wants a replica it does not have)
    failures, acked = _one_failure(table)
    cache = redis.Redis.from_url(own_redis.url)
    cache.config_set("min-replicas-to-write", 1)
    # WHEN redrive runs
    report = _redrive_one(failures, cache)
    # THEN the message stays and the report names the key and Redis's refusal
    assert acked == []
    assert not report.ok and report.invalidated == 0
    assert any("orders-k-1" in e and "NOREPLICAS" in e for e in report.errors), report.errors
    cache.close()


def test_redrive_acknowledges_the_message_once_its_keys_are_invalidated(
    table: Any,  # noqa: F811
    own_redis: RedisServer,
    tmp_path: Path,
) -> None:
    failures, acked = _one_failure(table)
    cache = redis.Redis.from_url(own_redis.url)
    report = _redrive_one(failures, cache)
    assert report.ok and report.invalidated == 1 and acked == [True]
    cache.close()
