"""``python -m streamcache consume`` and ``redrive`` for real: a moto server, its stream, a redis-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

import invalidator.handler as invalidator_handler
from streamcache.cli import main
from streamcache.keys import cache_key
from streamcache.local.demo import typed_key
from streamcache.local.embedded import embedded_aws
from streamcache.local.inspect import holding
from streamcache.local.stream import DynamoDBStream, stream_arn_of, streams_client

from .conftest import create_orders_table

Key = tuple[str, int]


@dataclass(frozen=True)
class Loop:
    dynamodb: Any  # boto3 client on the moto server
    endpoint_url: str
    cache: redis.Redis


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Loop]:
    """A moto server with the ``orders`` table, and the CLI's environment pointing at it and Redis."""
    import boto3

    with embedded_aws("server") as aws:
        assert aws.endpoint_url is not None
        env = {
            "REDIS_URL": redis_url,
            "KEY_SCHEMA": '{"orders": ["pk", "sk"]}',
            "DYNAMODB_ENDPOINT_URL": aws.endpoint_url,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in ("TABLE_NAME", "CACHE_KEY_PREFIX", "REDIS_CLUSTER", "ALLOWED_TABLES"):
            monkeypatch.delenv(name, raising=False)
        invalidator_handler.reset()
        dynamodb = boto3.client("dynamodb", endpoint_url=aws.endpoint_url)
        create_orders_table(dynamodb)
        cache = redis.Redis.from_url(redis_url)
        try:
            yield Loop(dynamodb, aws.endpoint_url, cache)
        finally:
            cache.close()
            invalidator_handler.reset()


def put(loop: Loop, key: Key, status: str) -> None:
    loop.dynamodb.put_item(TableName="orders", Item={**typed_key(key), "status": {"S": status}})


def update(loop: Loop, key: Key, status: str) -> None:
    loop.dynamodb.update_item(
        TableName="orders",
        Key=typed_key(key),
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
    )


def delete(loop: Loop, key: Key) -> None:
    loop.dynamodb.delete_item(TableName="orders", Key=typed_key(key))


def name_of(key: Key) -> str:
    return cache_key("orders", typed_key(key), ("pk", "sk"))


def stream_records(loop: Loop) -> list[dict[str, Any]]:
    stream = DynamoDBStream(stream_arn_of("orders", loop.endpoint_url), streams_client(loop.endpoint_url))
    (shard,) = stream.shards()
    records = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 1000).records
    return [{**r, "shardId": shard.shard_id, "streamArn": stream.arn} for r in records]


def last_sequence_per_key(records: list[dict[str, Any]]) -> dict[str, str]:
    newest: dict[str, str] = {}
    for record in records:
        keys = record["dynamodb"]["Keys"]
        newest[name_of((keys["pk"]["S"], int(keys["sk"]["N"])))] = record["dynamodb"]["SequenceNumber"]
    return newest


def consume_until_caught_up(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code = main(["consume", "--table", "orders", "--until-caught-up", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err + captured.out
    return captured.out


def test_consume_until_caught_up_leaves_redis_holding_the_tables_latest_state(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN inserts, updates (put over an item, UpdateItem) and deletes on four keys: 9 stream records
    keys: list[Key] = [("a-b", 1), ("a-b", 2), ("c", 1), ("d", 7)]
    for key in keys:
        put(loop, key, "new")
    update(loop, ("a-b", 1), "paid")
    put(loop, ("c", 1), "paid")
    update(loop, ("c", 1), "shipped")
    delete(loop, ("a-b", 2))
    delete(loop, ("d", 7))
    records = stream_records(loop)
    assert len(records) == 9

    # WHEN the CLI consumes the stream in batches of 4 until it is caught up
    out = consume_until_caught_up(capsys, "--batch-size", "4")

    # THEN it says what it read and delivered
    assert f"consuming {records[0]['streamArn']} until caught up" in out
    assert (
        "9 record(s) delivered in 3 batch(es), 3 invocation(s), 0 bisect(s), 0 retr(ies), "
        "0 sent to the OnFailure destination"
    ) in out
    # AND every key holds the table's latest state, versioned with its last stream record
    newest = last_sequence_per_key(records)
    for key in keys:
        held = holding(loop.cache, name_of(key))
        table = loop.dynamodb.get_item(TableName="orders", Key=typed_key(key), ConsistentRead=True)
        if "Item" in table:
            assert (held["state"], held["item"]) == ("item", table["Item"]), key
        else:
            assert held["state"] == "not found (tombstone)", key
        assert held["version"] == newest[name_of(key)], key
    assert holding(loop.cache, name_of(("c", 1)))["item"]["status"] == {"S": "shipped"}
    assert sorted(k.decode() for k in loop.cache.keys("*")) == sorted(name_of(k) for k in keys)


def test_redrive_invalidates_the_keys_of_the_failed_range(
    loop: Loop, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN three items consumed into Redis
    for key in (("a", 1), ("b", 1), ("c", 1)):
        put(loop, key, "new")
    consume_until_caught_up(capsys)
    # AND three later writes whose first two an OnFailure record (a JSON-lines file) says were dropped
    update(loop, ("a", 1), "paid")
    delete(loop, ("b", 1))
    update(loop, ("c", 1), "paid")
    records = stream_records(loop)
    first, second, outside = records[3:]
    failure = {
        "DDBStreamBatchInfo": {
            "shardId": first["shardId"],
            "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": second["dynamodb"]["SequenceNumber"],
            "streamArn": first["streamArn"],
            "batchSize": 2,
        }
    }
    path = tmp_path / "failures.jsonl"
    path.write_text(json.dumps(failure) + "\n")

    # WHEN the CLI redrives the file
    code = main(["redrive", str(path)])
    out = capsys.readouterr().out

    # THEN it succeeds and says what it did
    assert code == 0, out
    assert f"1 OnFailure record(s) in {path}" in out
    assert "re-read 2 record(s) from 1 range(s): 2 key(s) invalidated, 0 already newer" in out
    assert "problem" not in out
    # AND the range's keys are invalidated at their record's version; the key outside it is untouched
    for record, key in ((first, ("a", 1)), (second, ("b", 1))):
        held = holding(loop.cache, name_of(key))
        assert (held["state"], held["version"]) == ("invalidated", record["dynamodb"]["SequenceNumber"])
    held = holding(loop.cache, name_of(("c", 1)))
    assert (held["state"], held["item"]["status"]) == ("item", {"S": "new"})
    assert held["version"] == records[2]["dynamodb"]["SequenceNumber"]
    assert outside["eventName"] == "MODIFY"  # the write after the range: redrive never read it


def test_redrive_of_a_missing_file_is_one_line_and_exit_2(
    loop: Loop, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["redrive", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"python -m streamcache redrive: error: cannot read {str(missing)!r}: No such file or directory\n"
    )


def test_consume_is_quiet_like_replay(
    loop: Loop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no POWERTOOLS_* settings of the user's own (the loop fixture sets some: drop them)
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    put(loop, ("a", 1), "new")
    # WHEN the CLI consumes the stream
    out = consume_until_caught_up(capsys)
    # THEN it prints its own summary, and neither the invalidator's INFO logs nor EMF blobs
    assert "1 record(s) delivered" in out
    assert '"_aws"' not in out and '"level":"INFO"' not in out and "batch applied" not in out


def test_consume_exits_1_and_says_so_when_every_record_is_discarded(
    loop: Loop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stream whose records can never be applied (Redis refuses connections)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    for key in (("a", 1), ("b", 1)):
        put(loop, key, "new")
    # WHEN the CLI consumes it with no retries
    code = main(["consume", "--table", "orders", "--until-caught-up", "--max-retry-attempts", "0"])
    out = capsys.readouterr().out
    # THEN the run is not a silent success
    assert code == 1
    assert "2 record(s) discarded (every record read) after retries ran out" in out
