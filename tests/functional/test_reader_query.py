"""The reader answers queries: direct invoke and ``GET /items/{table}/query``, through the query cache."""

from __future__ import annotations

from typing import Any

import pytest

import invalidator.handler as invalidator_handler
import reader.handler as reader_handler
from reader import runtime as reader_runtime
from streamcache.local import events
from tests.functional.readerkit import deliver


@pytest.fixture
def orders(reader_env: dict[str, str], dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("QUERY_CACHE_TABLES", "orders")
    reader_runtime.reset()
    invalidator_handler.reset()
    for sk in range(5):
        dynamodb.put_item(
            TableName="orders", Item=events.item({"pk": {"S": "u1"}, "sk": {"N": str(sk)}}, v={"S": f"v{sk}"})
        )
    return dynamodb


def direct(query: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return reader_handler.handler({"table": "orders", "query": query, **fields}, None)


def http(raw_query: str, method: str = "GET", path: str = "/items/orders/query") -> dict[str, Any]:
    event = {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": raw_query,
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "headers": {},
        "isBase64Encoded": False,
    }
    return reader_handler.handler(event, None)


def test_a_direct_query_is_answered_then_served_from_the_cache(orders: Any) -> None:
    spec = {"partition": {"pk": "u1"}, "sort": {"sk": [">=", 2]}, "limit": 2}
    first = direct(spec)
    assert first["source"] == "dynamodb"
    assert [i["sk"] for i in first["items"]] == [2, 3]
    assert first["last_key"] == {"pk": "u1", "sk": 3}
    second = direct(spec)
    assert second == {**first, "source": "cache"}
    page2 = direct({**spec, "start": first["last_key"]})
    assert [i["sk"] for i in page2["items"]] == [4]


def test_a_write_applied_by_the_invalidator_is_seen_by_the_next_query(orders: Any) -> None:
    spec = {"partition": {"pk": "u1"}}
    assert direct(spec)["count"] == 5
    keys = {"pk": {"S": "u1"}, "sk": {"N": "9"}}
    item = events.item(keys, v={"S": "new"})
    orders.put_item(TableName="orders", Item=item)
    deliver(events.record("orders", "INSERT", keys, 7000, new=item))
    reader_runtime.built().cache.near.confirm_now()  # type: ignore[union-attr]
    answer = direct(spec)
    assert answer["count"] == 6 and answer["items"][-1]["v"] == "new"


def test_the_http_route_answers_like_the_direct_invoke(orders: Any) -> None:
    answer = http("pk=u1&sk=lt:2&format=dynamodb")
    assert answer["statusCode"] == 200
    body = __import__("json").loads(answer["body"])
    assert body["items"] == [
        events.item({"pk": {"S": "u1"}, "sk": {"N": str(sk)}}, v={"S": f"v{sk}"}) for sk in (0, 1)
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"partition": {"sk": 1}}, "exactly the key attribute 'pk'"),
        ({"partition": {"pk": 5}}, "'pk' must be a string"),
        ({"partition": {"pk": "u1"}, "sort": {"sk": ["~", 1]}}, "sort operator '~'"),
        ({"partition": {"pk": "u1"}, "limit": 0}, "limit must be a whole number"),
        ({"partition": {"pk": "u1"}, "index": "nope"}, "index 'nope' is not an index"),
        ({"partition": {"pk": "u1"}, "filter": "x"}, "unexpected query field 'filter'"),
    ],
)
def test_a_bad_query_is_a_400_naming_what_is_wrong(orders: Any, spec: dict[str, Any], message: str) -> None:
    answer = direct(spec)
    assert answer["error"]["status"] == 400
    assert message in answer["error"]["message"]


def test_a_bad_http_query_is_a_400_and_other_methods_405(orders: Any) -> None:
    assert http("sk=gt:1")["statusCode"] == 400
    assert http("pk=u1&sk=~:1")["statusCode"] == 400
    assert http("pk=u1", method="POST")["statusCode"] == 405
