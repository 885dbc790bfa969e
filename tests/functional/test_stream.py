"""The Streams API reader against moto (in-process), and the shard-order rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from streamcache.local.embedded import embedded_aws
from streamcache.local.stream import (
    DataTrimmed,
    DynamoDBStream,
    IteratorExpired,
    Shard,
    StreamError,
    epoch_seconds,
    lambda_record,
    ready_shards,
    stream_arn_of,
    streams_client,
)

from .conftest import create_orders_table


@pytest.fixture
def table() -> Iterator[Any]:
    import boto3

    with embedded_aws("in-process"):
        dynamodb = boto3.client("dynamodb")
        create_orders_table(dynamodb)
        yield dynamodb


def test_reads_every_record_of_the_table_stream_in_order(table: Any) -> None:
    for i in range(5):
        table.put_item(TableName="orders", Item={"pk": {"S": "a-b"}, "sk": {"N": str(i)}})
    table.delete_item(TableName="orders", Key={"pk": {"S": "a-b"}, "sk": {"N": "0"}})
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    (shard,) = stream.shards()
    page = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 1000)
    records = [lambda_record(r, stream.arn) for r in page.records]
    assert [r["eventName"] for r in records] == ["INSERT"] * 5 + ["REMOVE"]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers)
    first = records[0]
    assert first["eventSourceARN"] == stream.arn and first["eventSource"] == "aws:dynamodb"
    assert set(first["dynamodb"]) >= {"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber"}
    assert abs(first["dynamodb"]["ApproximateCreationDateTime"] - dt.datetime.now().timestamp()) < 60


def test_at_sequence_number_starts_at_that_record(table: Any) -> None:
    for i in range(3):
        table.put_item(TableName="orders", Item={"pk": {"S": "x"}, "sk": {"N": str(i)}})
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    (shard,) = stream.shards()
    every = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 10).records
    second = every[1]["dynamodb"]["SequenceNumber"]
    page = stream.read(stream.iterator(shard.shard_id, "AT_SEQUENCE_NUMBER", second), 10)
    assert page.records[0]["dynamodb"]["SequenceNumber"] == second


def test_a_table_without_a_stream_is_named(table: Any) -> None:
    table.create_table(
        TableName="plain",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(StreamError, match="'plain' has no enabled stream"):
        stream_arn_of("plain")


def test_ready_shards_puts_parents_before_children() -> None:
    shards = [Shard("c", "p", False), Shard("p", None, True), Shard("orphan", "trimmed", False)]
    assert [s.shard_id for s in ready_shards(shards, [])] == ["p", "orphan"]
    assert [s.shard_id for s in ready_shards(shards, ["p"])] == ["c", "orphan"]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(1_700_000_000, 1_700_000_000.0), (1_700_000_000_123, 1_700_000_000.123),
     (dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC), 1_700_000_000.0)],
)  # fmt: skip
def test_creation_time_is_normalised_to_epoch_seconds(value: object, seconds: float) -> None:
    assert epoch_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("code", "error"),
    [("ExpiredIteratorException", IteratorExpired), ("TrimmedDataAccessException", DataTrimmed)],
)
def test_streams_api_errors_the_reader_recovers_from_are_named(
    fake_aws: None, code: str, error: type[Exception]
) -> None:
    from botocore.stub import Stubber

    client = streams_client("http://127.0.0.1:9")
    stream = DynamoDBStream("arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x", client)
    with Stubber(client) as stub:
        stub.add_client_error("get_records", service_error_code=code)
        stub.add_client_error("get_shard_iterator", service_error_code=code)
        with pytest.raises(error, match=code):
            stream.read("i" * 40, 10)
        with pytest.raises(error, match=code):
            stream.iterator("shardId-00000001700000000000-00000000", "AFTER_SEQUENCE_NUMBER", "1" * 21)


EVERY_TYPE = {
    "pk": {"S": "every"},
    "sk": {"N": "1"},
    "s": {"S": "text"},
    "n": {"N": "-1.5"},
    "b": {"B": b"foobar"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"foo", b"bar"]},
    "m": {"M": {"inner": {"B": b"\x00\xff"}, "deep": {"M": {"x": {"N": "3"}}}}},
    "l": {"L": [{"B": b"foobar"}, {"S": "x"}, {"NULL": True}]},
    "null": {"NULL": True},
    "bool": {"BOOL": False},
}


def test_delivered_events_are_json_with_binary_as_base64_text(table: Any) -> None:
    """AWS delivers the event as JSON: ``{"B": "Zm9vYmFy"}`` for the bytes ``foobar`` (an event recorded
    from Lambda, and the Lambda guide's sample events). Every delivered event must survive
    ``json.loads(json.dumps(event))`` unchanged, for every attribute type.
    """
    import json

    from streamcache.local import esm

    table.put_item(TableName="orders", Item=EVERY_TYPE)
    table.put_item(TableName="orders", Item={**EVERY_TYPE, "b": {"B": b"changed"}})
    table.delete_item(TableName="orders", Key={"pk": {"S": "every"}, "sk": {"N": "1"}})
    events: list[dict[str, Any]] = []
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    esm.EventSourceMapping(stream, lambda event, context: events.append(event), esm.MappingConfig()).run()

    (event,) = events
    assert json.loads(json.dumps(event)) == event
    insert, modify, remove = (r["dynamodb"] for r in event["Records"])
    image = insert["NewImage"]
    assert image["b"] == {"B": "Zm9vYmFy"}
    assert sorted(image["bs"]["BS"]) == ["YmFy", "Zm9v"]
    assert image["m"]["M"]["inner"] == {"B": "AP8="}
    assert image["l"]["L"][0] == {"B": "Zm9vYmFy"}
    assert {k: image[k] for k in ("s", "n", "null", "bool")} == {
        "s": {"S": "text"}, "n": {"N": "-1.5"}, "null": {"NULL": True}, "bool": {"BOOL": False}
    }  # fmt: skip
    assert modify["OldImage"]["b"] == {"B": "Zm9vYmFy"} and modify["NewImage"]["b"] == {"B": "Y2hhbmdlZA=="}
    assert remove["OldImage"]["bs"]["BS"] and all(isinstance(b, str) for b in remove["OldImage"]["bs"]["BS"])


def test_a_binary_key_is_delivered_as_base64_text() -> None:
    """boto3 gives a B key as bytes; Lambda's JSON event carries its base64 text.

    Checked on a record shaped as boto3 returns it from AWS: moto 5's stream
    records double-encode binary *key* attributes (``Keys``), so moto cannot
    show it.
    """
    import json

    raw = {"eventName": "INSERT", "dynamodb": {"Keys": {"b": {"B": b"foobar"}}, "SequenceNumber": "1"}}
    record = lambda_record(raw, "arn:aws:dynamodb:us-east-1:123456789012:table/blobs/stream/x")
    assert record["dynamodb"]["Keys"] == {"b": {"B": "Zm9vYmFy"}}
    assert json.loads(json.dumps(record)) == record
