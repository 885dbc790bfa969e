"""``CachedTable.query`` against boto3's own ``Table.query`` on moto, with the invalidator in the loop.

Every comparison drops ``ResponseMetadata`` (a cached page has none). Stream
records are read from moto's stream and handed to the invalidator, as the
event source mapping would.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from moto import mock_aws

from invalidator.processor import Invalidator
from streamcache import aws
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.layouts import Layouts
from streamcache.read.cache import Cache
from streamcache.read.table import CachedTable
from streamcache.schema import KeySchemas
from streamcache.settings import Settings
from streamcache.streams import DynamoDBStream, lambda_record

TABLE = "orders"


class Loop:
    """A table on moto, its stream, and the invalidator applying what the stream holds."""

    def __init__(self, url: str, settle_ms: int = 0) -> None:
        env = {"REDIS_URL": url, "QUERY_CACHE_TABLES": TABLE, "INDEX_SETTLE_MS": str(settle_ms)}
        self.settings = Settings.from_env(env)
        self.client = boto3.client("dynamodb", region_name="us-east-1")
        description = self.client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": t}
                for n, t in (("pk", "S"), ("sk", "N"), ("status", "S"), ("total", "N"))
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "byStatus",
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            LocalSecondaryIndexes=[
                {
                    "IndexName": "byTotal",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "total", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        self.table = boto3.resource("dynamodb", region_name="us-east-1").Table(TABLE)
        self.cached = CachedTable(self.table, cache=Cache(settings=self.settings))
        redis = redis_client(self.settings, INVALIDATOR_TIMEOUTS)
        layouts = Layouts(
            self.settings.query_cache_tables, lambda t: self.client.describe_table(TableName=t)["Table"]
        )
        self.invalidator = Invalidator(
            self.settings, redis, KeySchemas({TABLE: ("pk", "sk")}, None), layouts=layouts
        )
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        self.stream = DynamoDBStream(description["LatestStreamArn"], streams)
        shard = self.stream.shards()[0].shard_id
        self.iterator: str | None = self.stream.iterator(shard, "TRIM_HORIZON")

    def drain(self) -> int:
        """Apply every record the stream holds; the number applied."""
        records: list[dict[str, Any]] = []
        while self.iterator is not None:
            page = self.stream.read(self.iterator, 1000)
            self.iterator = page.next_iterator
            records += [lambda_record(r, self.stream.arn) for r in page.records]
            if not page.records:
                break
        if records:
            result = self.invalidator.process({"Records": records})
            assert result.response == {"batchItemFailures": []}
        return len(records)

    def put(self, pk: str, sk: int, **attributes: Any) -> None:
        self.table.put_item(Item={"pk": pk, "sk": sk, **attributes})


@pytest.fixture
def loop(redis_url: str, fake_aws: None) -> Iterator[Loop]:
    with mock_aws():
        world = Loop(redis_url)
        for sk in range(12):
            world.put(
                "u1", sk, status="open" if sk % 3 else "shipped", total=Decimal(sk * 7 % 10), note="x" * sk
            )
        world.put("u2", 1, status="open", total=5, tags={"a", "b"}, blob=b"\x00\xff")
        world.drain()
        yield world
    aws.client.cache_clear()


def bare(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": Key("pk").eq("u1")},
    {"KeyConditionExpression": Key("pk").eq("u1") & Key("sk").gt(4)},
    {"KeyConditionExpression": Key("pk").eq("u1") & Key("sk").between(2, 9), "ScanIndexForward": False},
    {"KeyConditionExpression": Key("pk").eq("u1"), "FilterExpression": Attr("status").eq("open")},
    {
        "KeyConditionExpression": Key("pk").eq("u1"),
        "ProjectionExpression": "sk, #s",
        "ExpressionAttributeNames": {"#s": "status"},
    },
    {"KeyConditionExpression": Key("pk").eq("u1"), "Select": "COUNT"},
    {"KeyConditionExpression": "pk = :p AND sk < :s", "ExpressionAttributeValues": {":p": "u1", ":s": 5}},
    {
        "KeyConditionExpression": "#k = :p",
        "ExpressionAttributeNames": {"#k": "pk"},
        "ExpressionAttributeValues": {":p": "u2"},
    },
    {"KeyConditionExpression": Key("status").eq("open"), "IndexName": "byStatus"},
    {"KeyConditionExpression": Key("pk").eq("u1") & Key("total").gte(5), "IndexName": "byTotal"},
    {"KeyConditionExpression": Key("pk").eq("nobody")},
]


@pytest.mark.parametrize("kwargs", QUERIES, ids=range(len(QUERIES)))
def test_a_cached_query_answers_exactly_what_boto3_answers(loop: Loop, kwargs: dict[str, Any]) -> None:
    expected = bare(loop.table.query(**kwargs))
    assert bare(loop.cached.query(**kwargs)) == expected  # miss: DynamoDB, then filled
    assert loop.cached.query(**kwargs) == expected  # hit: from Redis
    assert loop.cached.query_counters.hits == 1


def test_pages_match_boto3_page_by_page(loop: Loop) -> None:
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("u1"), "Limit": 5}
    for cached_pass in (False, True):  # the second pass is served from the cache
        start: dict[str, Any] = {}
        pages = 0
        while True:
            expected = bare(loop.table.query(**kwargs, **start))
            answer = loop.cached.query(**kwargs, **start)
            assert (answer if cached_pass else bare(answer)) == expected
            pages += 1
            if "LastEvaluatedKey" not in expected:
                break
            start = {"ExclusiveStartKey": expected["LastEvaluatedKey"]}
        assert pages == 3
    assert loop.cached.query_counters.hits == 3


def test_a_write_applied_by_the_invalidator_hides_the_old_page(loop: Loop) -> None:
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("u1") & Key("sk").lt(3)}
    before = bare(loop.cached.query(**kwargs))
    loop.put("u1", 1, status="open", total=1, note="changed")
    assert loop.cached.query(**kwargs) == before  # the record is not applied yet: the cache trails
    loop.drain()
    after = loop.cached.query(**kwargs)
    assert bare(after) == bare(loop.table.query(**kwargs))
    assert [i.get("note") for i in after["Items"]] == ["", "changed", "xx"]


def test_an_insert_moves_a_limit_page_boundary(loop: Loop) -> None:
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("u1") & Key("sk").gte(0), "Limit": 4}
    first = loop.cached.query(**kwargs)
    second = loop.cached.query(**kwargs, ExclusiveStartKey=first["LastEvaluatedKey"])
    loop.table.put_item(Item={"pk": "u1", "sk": Decimal("0.5"), "status": "open", "total": 1})
    loop.drain()
    for start in ({}, {"ExclusiveStartKey": first["LastEvaluatedKey"]}):
        assert bare(loop.cached.query(**kwargs, **start)) == bare(loop.table.query(**kwargs, **start))
    assert loop.cached.query(**kwargs, ExclusiveStartKey=first["LastEvaluatedKey"]) != second


def test_an_item_moving_between_gsi_partitions_leaves_one_and_enters_the_other(loop: Loop) -> None:
    open_q: dict[str, Any] = {"KeyConditionExpression": Key("status").eq("open"), "IndexName": "byStatus"}
    shipped_q: dict[str, Any] = {
        "KeyConditionExpression": Key("status").eq("shipped"),
        "IndexName": "byStatus",
    }
    for q in (open_q, shipped_q):
        loop.cached.query(**q)
    loop.put("u1", 1, status="shipped", total=7, note="x")  # was open
    loop.drain()
    for q in (open_q, shipped_q):
        assert bare(loop.cached.query(**q)) == bare(loop.table.query(**q))


def test_a_gsi_page_is_not_filled_before_the_index_settles(redis_url: str, fake_aws: None) -> None:
    with mock_aws():
        world = Loop(redis_url, settle_ms=60_000)
        world.put("u1", 1, status="open", total=1)
        world.drain()  # the partition's marker moved just now
        q: dict[str, Any] = {"KeyConditionExpression": Key("status").eq("open"), "IndexName": "byStatus"}
        assert bare(world.cached.query(**q)) == bare(world.table.query(**q))
        world.cached.query(**q)
        counters = world.cached.query_counters
        assert (counters.hits, counters.fills, counters.fills_refused) == (0, 0, 2)
        # The base table's partition is read consistently: filled at once.
        base: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("u1")}
        world.cached.query(**base)
        assert world.cached.query(**base) == bare(world.table.query(**base))
        assert counters.hits == 1
    aws.client.cache_clear()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"KeyConditionExpression": Key("pk").eq("u1"), "ConsistentRead": True},
        {"KeyConditionExpression": Key("pk").eq("u1"), "ReturnConsumedCapacity": "TOTAL"},
        {"KeyConditionExpression": Key("pk").eq("u1"), "IndexName": "noSuchIndex"},
    ],
    ids=["consistent-read", "consumed-capacity", "unknown-index"],
)
def test_what_the_cache_cannot_answer_goes_to_dynamodb_and_is_counted(
    loop: Loop, kwargs: dict[str, Any]
) -> None:
    try:
        expected: Any = bare(loop.table.query(**kwargs))
    except Exception as err:  # DynamoDB's own error must reach the caller unchanged
        with pytest.raises(type(err)):
            loop.cached.query(**kwargs)
    else:
        assert bare(loop.cached.query(**kwargs)) == expected
    assert loop.cached.query_counters.passthrough == 1
    assert loop.cached.query_counters.misses == 0


def test_a_table_not_opted_in_is_never_cached(loop: Loop) -> None:
    settings = Settings.from_env({"REDIS_URL": loop.settings.redis_url})
    plain = CachedTable(loop.table, cache=Cache(settings=settings))
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("u1")}
    plain.query(**kwargs)
    plain.query(**kwargs)
    assert plain.query_counters.passthrough == 2
    assert plain.query_counters.hits == 0


def test_redis_down_answers_from_dynamodb(loop: Loop, own_redis: Any) -> None:
    settings = Settings.from_env({"REDIS_URL": own_redis.url, "QUERY_CACHE_TABLES": TABLE})
    cached = CachedTable(loop.table, cache=Cache(settings=settings))
    own_redis.stop()
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("u1")}
    assert bare(cached.query(**kwargs)) == bare(loop.table.query(**kwargs))
    assert cached.query_counters.redis_errors == 1


def test_repeated_pages_come_from_the_near_cache_and_a_write_still_drops_them(loop: Loop) -> None:
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq("u2")}
    near = loop.cached.cache.near
    assert near is not None
    for _ in range(4):
        loop.cached.query(**kwargs)
    assert near.counters.hits >= 2  # pages served from process memory
    loop.put("u2", 1, status="open", total=6, note="new")
    loop.drain()
    assert near.confirm_now()
    assert [i["note"] for i in loop.cached.query(**kwargs)["Items"]] == ["new"]
