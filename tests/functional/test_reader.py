"""The reader handler end to end: moto DynamoDB + a real redis-server (docs/reader.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import reader.handler as reader_handler
from reader import runtime as reader_runtime
from streamcache.local import events
from streamcache.local.inspect import holding
from tests.functional.readerkit import (
    BIG,
    boto3_item,
    count_reads,
    deliver,
    function_url_event,
    http_api_event,
)

KEY = {"pk": {"S": "u1"}, "sk": {"N": "42"}}
ITEM = {
    **KEY,
    "big": {"N": BIG},
    "frac": {"N": "-0.000000000000000000000000000000000001"},
    "ss": {"SS": ["b", "a"]},
    "ns": {"NS": ["10", "2.5", BIG]},
    "bs": {"BS": ["/w==", "AAE="]},
    "bin": {"B": "AAEC"},
    "map": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"NULL": True}, {"BOOL": True}]}}},
}
PLAIN = {
    "pk": "u1",
    "sk": 42,
    "big": int(BIG),
    "frac": -1e-36,
    "ss": ["a", "b"],
    "ns": [2.5, 10, int(BIG)],
    "bs": ["AAE=", "/w=="],
    "bin": "AAEC",
    "map": {"list": ["x", 1, None, True]},
}


def sets_sorted(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB does not keep set order: compare sets as sets."""
    return {
        k: {t: sorted(v) if t in ("SS", "NS", "BS") else v for t, v in tv.items()} for k, tv in item.items()
    }


def test_miss_then_hit_in_both_formats(read, dynamodb) -> None:
    dynamodb.put_item(TableName="orders", Item=boto3_item(ITEM))
    first = read({"pk": "u1", "sk": 42})
    assert first == {"found": True, "item": PLAIN, "source": "dynamodb"}
    assert read({"pk": "u1", "sk": 42}) == {"found": True, "item": PLAIN, "source": "cache"}
    typed = read({"pk": "u1", "sk": {"N": "42.0"}}, format="dynamodb")
    assert typed["source"] == "cache"
    assert sets_sorted(typed["item"]) == sets_sorted(ITEM)
    assert typed["item"]["big"] == {"N": BIG}  # exact, 38 digits


def test_fill_is_stored_with_the_item_ttl(read, dynamodb, cache) -> None:
    dynamodb.put_item(TableName="orders", Item=boto3_item(ITEM))
    read({"pk": "u1", "sk": 42})
    held = holding(cache, "orders-u1-42")
    assert held["state"] == "item (reader fill)"
    assert 590 < held["ttl"] <= 600


def test_not_found_is_cached_with_the_negative_ttl(read, cache) -> None:
    assert read({"pk": "nobody", "sk": 1}) == {"found": False, "item": None, "source": "dynamodb"}
    assert read({"pk": "nobody", "sk": 1}) == {"found": False, "item": None, "source": "cache"}
    assert 0 < cache.ttl("orders-nobody-1") <= 30


def test_items_written_by_the_stream_are_served_from_cache(read) -> None:
    image = events.item({"id": {"S": "ann"}}, name={"S": "Ann"})
    deliver(events.record("users", "INSERT", {"id": {"S": "ann"}}, events.FIRST_SEQUENCE, new=image))
    counting = count_reads()
    answer = read({"id": "ann"}, table="users", format="dynamodb")
    assert answer == {"found": True, "item": image, "source": "cache"}
    assert counting.calls == 0


def test_binary_hash_key_table(read, dynamodb) -> None:
    dynamodb.put_item(TableName="blobs", Item={"b": {"B": b"\x00\xff"}, "v": {"S": "x"}})
    for source in ("dynamodb", "cache"):
        assert read({"b": "AP8="}, table="blobs") == {
            "found": True,
            "item": {"b": "AP8=", "v": "x"},
            "source": source,
        }


def test_key_schema_types_come_from_describe_table_once(read, dynamodb, monkeypatch) -> None:
    calls: list[str] = []
    original = dynamodb.describe_table
    schemas = reader_runtime.runtime().schemas
    monkeypatch.setattr(schemas, "_describe", lambda t: (calls.append(t), _describe(original, t))[1])
    for _ in range(3):
        read({"pk": "u1", "sk": 1})
    assert calls == ["orders"]


def _describe(original: Any, table: str) -> Any:
    from streamcache.schema import table_keys_from_description

    return table_keys_from_description(original(TableName=table)["Table"])


@pytest.mark.parametrize(
    ("event", "status", "says"),
    [
        ({"key": {"pk": "u1", "sk": 1}, "table": "secrets"}, 403, "'secrets' is not readable"),
        ({"key": {"pk": "u1", "sk": "1"}}, 400, "'sk' must be a number"),
        ({"key": {"pk": "u1"}}, 400, "'sk' is missing"),
        ({"key": {"pk": "u1", "sk": 1}, "format": "xml"}, 400, "format 'xml'"),
        ({"key": {"pk": "u1", "sk": 1}, "color": "red"}, 400, "unexpected field 'color'"),
        ({"key": {"id": "x"}, "table": "ghosts"}, 503, "key schema of table 'ghosts'"),
        ({"table": "orders"}, 400, "key must be a JSON object"),
    ],
)
def test_direct_mistakes_are_error_answers_not_raises(read, event, status, says) -> None:
    answer = reader_handler.handler(event, None)
    assert answer["error"]["status"] == status
    assert says in answer["error"]["message"]
    assert "Traceback" not in json.dumps(answer)


def test_a_non_object_event_is_a_400_answer(read) -> None:
    assert reader_handler.handler(["not", "an", "object"], None)["error"]["status"] == 400


# -- HTTP ----------------------------------------------------------------------

BUILDERS = {"function-url": function_url_event, "http-api": http_api_event}


@pytest.fixture(params=sorted(BUILDERS))
def http(request, reader_env) -> Any:
    build = BUILDERS[request.param]

    def call(query: str, method: str = "GET", path: str = "/items/orders") -> tuple[int, dict[str, Any]]:
        answer = reader_handler.handler(build(method, path, query), None)
        assert answer["headers"]["Content-Type"] == "application/json"
        body = answer["body"]
        assert "Traceback" not in body and 'File "' not in body
        return answer["statusCode"], json.loads(body)

    return call


def test_http_200_then_cache(http, dynamodb) -> None:
    dynamodb.put_item(TableName="orders", Item=boto3_item(ITEM))
    assert http("pk=u1&sk=42") == (200, {"found": True, "item": PLAIN, "source": "dynamodb"})
    status, body = http("pk=u1&sk=42&format=dynamodb")
    assert (status, body["source"], body["item"]["big"]) == (200, "cache", {"N": BIG})


def test_http_404_for_a_missing_item_has_the_answer_body(http) -> None:
    assert http("pk=u9&sk=1") == (404, {"found": False, "item": None, "source": "dynamodb"})


def test_http_key_values_are_percent_decoded(http, dynamodb) -> None:
    dynamodb.put_item(TableName="orders", Item={"pk": {"S": "a b+c,d/é"}, "sk": {"N": "1"}})
    status, body = http("pk=a%20b%2Bc%2Cd%2F%C3%A9&sk=1")
    assert (status, body["item"]["pk"]) == (200, "a b+c,d/é")


@pytest.mark.parametrize(
    ("path", "query", "status", "says"),
    [
        ("/items/secrets", "pk=u1&sk=1", 403, "'secrets' is not readable"),
        ("/items/orders", "pk=u1", 400, "'sk' is missing"),
        ("/items/orders", "pk=u1&sk=1&x=2", 400, "unexpected query parameter 'x'"),
        ("/items/orders", "pk=u1&sk=abc", 400, "'sk': value is not a number"),
        ("/items/orders", "pk=u1&pk=u2&sk=1", 400, "'pk' is given more than once"),
        ("/items/orders", "pk=" + "x" * 2049 + "&sk=1", 400, "'pk': value is 2049 bytes"),
        ("/items/users", "id=", 400, "'id': value is empty"),
        ("/items/blobs", "b=%25%25", 400, "'b': value is not valid base64"),
        ("/items/ghosts", "id=x", 503, "key schema of table 'ghosts'"),
        ("/nothing/here", "", 404, "no such route"),
    ],
)
def test_http_errors_name_the_problem(http, path, query, status, says) -> None:
    got_status, body = http(query, path=path)
    assert got_status == status
    assert body["error"]["status"] == status
    assert says in body["error"]["message"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_http_other_methods_are_405(http, method) -> None:
    assert http("pk=u1&sk=1", method=method)[0] == 405


def test_http_unexpected_error_is_a_generic_500(http, monkeypatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("secret internals /var/task/reader.py line 12")

    monkeypatch.setattr(reader_runtime.runtime(), "read", broken)
    status, body = http("pk=u1&sk=1")
    assert status == 500
    assert "internals" not in json.dumps(body)
    assert body["error"]["message"] == "internal error; the request was logged"


def test_dynamodb_failure_is_a_503_answer_and_anything_else_a_generic_500(read, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    reads = reader_runtime.runtime().reads

    def throttled(*args: Any) -> Any:
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
        raise ClientError(error, "GetItem")

    monkeypatch.setattr(reads.table, "get", throttled)
    answer = read({"pk": "u1", "sk": 1})
    assert answer["error"]["status"] == 503
    assert "ProvisionedThroughputExceededException" in answer["error"]["message"]

    def broken(*args: Any) -> Any:
        raise RuntimeError("internals")

    monkeypatch.setattr(reads.table, "get", broken)
    assert read({"pk": "u1", "sk": 1}) == {
        "error": {"status": 500, "message": "internal error; the request was logged"}
    }
