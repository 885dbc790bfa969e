"""``CachedTable`` against boto3's own Table on moto, over a real redis-server.

The drop-in promise: the same answers with the same Python types as boto3,
from DynamoDB on a miss and from Redis on a hit; anything the cache cannot
answer exactly goes to DynamoDB (counted); everything else is the Table's.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import boto3
import pytest
import redis
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError

from streamcache import Cache, CachedTable
from streamcache.local import events
from tests.functional.readerkit import boto3_item, deliver

BIG = "12345678901234567890123456789012345678"  # 38 significant digits

ITEMS: list[dict[str, Any]] = [
    {
        "pk": "every-type%",
        "sk": 1,
        "s": "text",
        "empty": "",
        "n": Decimal(BIG),
        "tiny": Decimal("-1E-130"),
        "frac": Decimal("-0.000000000000000000000000000000000001"),
        "zero": 0,
        "b": Binary(b"\x00\xff"),
        "empty_b": Binary(b""),
        "t": True,
        "f": False,
        "null": None,
        "ss": {"a", "b-c"},
        "ns": {Decimal("1.5"), Decimal("-" + BIG), 7},
        "bs": {Binary(b"\x01"), Binary(b"\x02\x03")},
        "m": {"inner": {"deep": [1, "x", None, {Binary(b"z")}, {"q": False}]}, "empty": {}},
        "l": [[], {}, "", Decimal("3.14")],
    },
    {"pk": "a-b", "sk": Decimal("-" + BIG), "v": "range key 38 digits"},
    {"pk": "a", "sk": Decimal("0.5"), "v": "fraction range key"},
    {"pk": "%2D", "sk": 2, "v": "escaped-looking hash key"},
]


def typed(value: Any) -> Any:
    """A value with every nested type made visible, so == also compares types."""
    if isinstance(value, dict):
        return ("dict", {k: typed(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, set):
        return ("set", sorted(repr(typed(v)) for v in value))
    return (type(value).__name__, value)


@pytest.fixture
def world(reader_env: dict[str, str], redis_url: str) -> Any:
    resource = boto3.resource("dynamodb", region_name="us-east-1")
    orders = resource.Table("orders")
    for item in ITEMS:
        orders.put_item(Item=item)
    cache = Cache(redis_url)
    return orders, CachedTable(orders, cache), redis.Redis.from_url(redis_url)


def key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


@pytest.mark.parametrize("index", range(len(ITEMS)))
def test_get_item_answers_exactly_what_boto3_answers_on_miss_and_hit(world: Any, index: int) -> None:
    orders, cached, _ = world
    key = key_of(ITEMS[index])
    expected = typed(orders.get_item(Key=key)["Item"])
    miss = cached.get_item(Key=key)
    hit = cached.get_item(Key=key)
    assert typed(miss["Item"]) == expected
    assert typed(hit["Item"]) == expected
    assert set(miss) == set(hit) == {"Item"}
    assert (cached.cache.counters.misses, cached.cache.counters.hits) == (1, 1)


def test_an_item_written_by_the_invalidator_reads_back_as_boto3_reads_it(world: Any, dynamodb: Any) -> None:
    orders, cached, _ = world
    keys = {"pk": {"S": "from-stream"}, "sk": {"N": "9"}}
    image = {
        **keys,
        "n": {"N": BIG},
        "b": {"B": base64.b64encode(b"\x00\x01").decode()},
        "bs": {"BS": ["AQ=="]},
        "ns": {"NS": ["1", "-1E-130"]},
        "m": {"M": {"l": {"L": [{"NULL": True}, {"BOOL": True}]}}},
    }
    dynamodb.put_item(TableName="orders", Item=boto3_item(image))
    deliver(events.record("orders", "INSERT", keys, 100, new=image))
    answer = cached.get_item(Key={"pk": "from-stream", "sk": 9})
    assert cached.cache.counters.hits == 1
    assert typed(answer["Item"]) == typed(orders.get_item(Key={"pk": "from-stream", "sk": 9})["Item"])


def test_not_found_is_an_empty_answer_and_is_cached(world: Any) -> None:
    orders, cached, client = world
    key = {"pk": "nobody", "sk": 1}
    assert "Item" not in orders.get_item(Key=key)
    assert cached.get_item(Key=key) == {}
    assert cached.get_item(Key=key) == {}
    assert (cached.cache.counters.misses, cached.cache.counters.hits) == (1, 1)
    assert client.get("orders-nobody-1") is not None


@pytest.mark.parametrize(
    "extra",
    [
        {"ConsistentRead": True},
        {"ProjectionExpression": "pk, s"},
        {"ReturnConsumedCapacity": "TOTAL"},
        {"AttributesToGet": ["pk"]},
    ],
    ids=lambda e: next(iter(e)),
)
def test_arguments_the_cache_cannot_answer_go_to_dynamodb_counted(world: Any, extra: dict[str, Any]) -> None:
    orders, cached, client = world
    key = key_of(ITEMS[0])
    answer = cached.get_item(Key=key, **extra)
    expected = orders.get_item(Key=key, **extra)
    assert typed(answer["Item"]) == typed(expected["Item"])
    assert "ResponseMetadata" in answer  # boto3's own response, untouched
    assert cached.cache.counters.passthrough == 1
    assert client.keys("*") == []  # Redis never asked


def outcome(call: Any) -> Any:
    """An answer's Item, or the error code DynamoDB raised."""
    try:
        return typed(call().get("Item"))
    except ClientError as err:
        return err.response["Error"]["Code"]


@pytest.mark.parametrize(
    "key",
    [
        {"pk": "%2D", "sk": "2"},  # a string for an N key: its cache key would be the number's
        {"pk": "u1"},
        {"pk": "u1", "sk": 1, "other": "x"},
        {"pk": "", "sk": 1},
    ],
    ids=["wrong-type", "missing-range", "extra-attribute", "empty-hash"],
)
def test_keys_dynamodb_would_refuse_are_its_to_answer(world: Any, key: dict[str, Any]) -> None:
    orders, cached, client = world
    cached.get_item(Key={"pk": "%2D", "sk": 2})  # the number key's item is cached
    ours = outcome(lambda: cached.get_item(Key=key))
    assert ours == outcome(lambda: orders.get_item(Key=key))
    assert ours != typed(ITEMS[3])
    assert cached.cache.counters.passthrough == 1
    assert client.keys("*") == [b"orders-%252D-2"]


def test_everything_else_is_the_wrapped_table(world: Any) -> None:
    orders, cached, _ = world
    assert cached.name == "orders"
    assert cached.table is orders
    cached.put_item(Item={"pk": "q", "sk": 1, "v": "one"})
    cached.update_item(
        Key={"pk": "q", "sk": 1}, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": "two"}
    )
    found = cached.query(KeyConditionExpression=Key("pk").eq("q"))
    assert [i["v"] for i in found["Items"]] == ["two"]
    with cached.batch_writer() as batch:
        batch.delete_item(Key={"pk": "q", "sk": 1})
    assert orders.get_item(Key={"pk": "q", "sk": 1}).get("Item") is None
    assert cached.key_schema == orders.key_schema


def test_a_stale_cached_item_is_replaced_by_the_invalidator_then_read_back(world: Any) -> None:
    orders, cached, _ = world
    keys = {"pk": {"S": "a"}, "sk": {"N": "0.5"}}
    assert cached.get_item(Key={"pk": "a", "sk": Decimal("0.50")})["Item"]["v"] == "fraction range key"
    orders.put_item(Item={"pk": "a", "sk": Decimal("0.5"), "v": "new"})
    deliver(events.record("orders", "MODIFY", keys, 200, new={**keys, "v": {"S": "new"}}))
    assert cached.get_item(Key={"pk": "a", "sk": Decimal("0.5")})["Item"]["v"] == "new"


def test_tables_share_one_cache_and_its_counters(world: Any) -> None:
    _, cached, _ = world
    users = CachedTable(boto3.resource("dynamodb", region_name="us-east-1").Table("users"), cached.cache)
    users.put_item(Item={"id": "u1", "name": "Ada"})
    assert users.get_item(Key={"id": "u1"})["Item"] == {"id": "u1", "name": "Ada"}
    cached.get_item(Key=key_of(ITEMS[1]))
    assert cached.cache.counters.take()["misses"] == 2
    assert cached.cache.counters.snapshot()["misses"] == 0


def test_a_remembered_key_never_answers_an_equal_key_of_another_type(world: Any) -> None:
    orders, cached, _ = world
    cached.get_item(Key={"pk": "every-type%", "sk": 1})  # remembered, and cached
    key = {"pk": "every-type%", "sk": True}  # True == 1 and hashes alike: only its type differs
    assert outcome(lambda: cached.get_item(Key=key)) == outcome(lambda: orders.get_item(Key=key))
    assert cached.cache.counters.passthrough == 1
