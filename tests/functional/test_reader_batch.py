"""The reader's batch: direct invoke ``{"table", "keys"}`` and ``POST /items/{table}/batch``."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import reader.handler as reader_handler
from reader import observe
from reader import runtime as reader_runtime
from tests.functional.readerkit import function_url_event, http_api_event

ITEMS = [{"pk": {"S": f"u{n}"}, "sk": {"N": str(n)}, "v": {"N": str(n * 10)}} for n in range(5)]


@pytest.fixture
def stocked(reader_env: dict[str, str], dynamodb: Any) -> Any:
    for item in ITEMS:
        dynamodb.put_item(TableName="orders", Item=item)
    return dynamodb


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = reader_handler.handler(event, None)
    return answer


def test_direct_batch_answers_in_order_with_repeats_and_absent_keys(stocked: Any) -> None:
    keys = [{"pk": "u3", "sk": 3}, {"pk": "nobody", "sk": 1}, {"pk": "u1", "sk": 1}, {"pk": "u3", "sk": 3}]
    first = invoke({"table": "orders", "keys": keys})
    assert [a["found"] for a in first["items"]] == [True, False, True, True]
    assert [a["item"] and a["item"]["v"] for a in first["items"]] == [30, None, 10, 30]
    assert {a["source"] for a in first["items"]} == {"dynamodb"}
    again = invoke({"table": "orders", "keys": keys, "format": "dynamodb"})
    assert [a["source"] for a in again["items"]] == ["cache"] * 4
    assert again["items"][0]["item"] == ITEMS[3]


def test_direct_batch_of_100_keys_reads_each_once(stocked: Any) -> None:
    keys = [{"pk": f"u{n % 5}", "sk": n % 5} for n in range(100)]
    answer = invoke({"table": "orders", "keys": keys})
    assert [a["item"]["v"] for a in answer["items"]] == [(n % 5) * 10 for n in range(100)]
    runtime = reader_runtime.built()
    assert runtime is not None and runtime.cache.counters.snapshot()["misses"] == 5


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        ({"keys": []}, 400, "keys must be a JSON array of 1 to 100 keys"),
        ({"keys": {"pk": "u1"}}, 400, "keys must be a JSON array"),
        ({"keys": [{"pk": "u1", "sk": 1}] * 101}, 400, "keys holds 101 keys; a batch reads at most 100"),
        ({"keys": [{"pk": "u1", "sk": 1}, {"pk": "u1"}]}, 400, "keys[1]: key attribute 'sk' is missing"),
        ({"keys": [{"pk": "u1", "sk": "x"}]}, 400, "keys[0]: key attribute 'sk'"),
        ({"key": {"pk": "u1", "sk": 1}, "keys": [{"pk": "u1", "sk": 1}]}, 400, "not both"),
        ({"table": "secret", "keys": [{"pk": "u1", "sk": 1}]}, 403, "not readable here"),
    ],
)
def test_direct_batch_mistakes_are_answered_like_single_reads(
    stocked: Any, event: dict[str, Any], status: int, message: str
) -> None:
    answer = invoke(event)
    assert answer["error"]["status"] == status
    assert message in answer["error"]["message"]


def post(body: Any, path: str = "/items/orders/batch", encode: bool = False, api: bool = False) -> Any:
    event = (http_api_event if api else function_url_event)("POST", path, "")
    event["requestContext"]["http"]["method"] = "POST"
    text = body if isinstance(body, str) else json.dumps(body)
    event["body"] = base64.b64encode(text.encode()).decode() if encode else text
    event["isBase64Encoded"] = encode
    if api:
        event["routeKey"] = event["requestContext"]["routeKey"] = "POST /items/{table}/batch"
        event["pathParameters"] = {"table": "orders"}
    answer = invoke(event)
    return answer["statusCode"], json.loads(answer["body"]), answer.get("headers", {})


@pytest.mark.parametrize("api", [False, True], ids=["function-url", "http-api"])
@pytest.mark.parametrize("encode", [False, True], ids=["text", "base64"])
def test_http_batch_answers_200_with_items_in_order(stocked: Any, api: bool, encode: bool) -> None:
    body = {"keys": [{"pk": "u2", "sk": 2}, {"pk": "none", "sk": 0}], "format": "dynamodb"}
    status, answer, _ = post(body, encode=encode, api=api)
    assert status == 200
    assert answer == {
        "items": [
            {"found": True, "item": ITEMS[2], "source": "dynamodb"},
            {"found": False, "item": None, "source": "dynamodb"},
        ]
    }


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("not json", 400, "the body must be JSON"),
        ([1, 2], 400, "the body must be a JSON object"),
        ({"keys": [{"pk": "u1", "sk": 1}], "extra": 1}, 400, "unexpected field 'extra'"),
        ({"keys": [{"pk": "u1", "sk": 1}], "format": "xml"}, 400, "format 'xml'"),
        ({"keys": []}, 400, "keys must be a JSON array"),
        ({}, 400, "keys must be a JSON array"),
    ],
)
def test_http_batch_mistakes_are_400_naming_them(stocked: Any, body: Any, status: int, message: str) -> None:
    got, answer, _ = post(body)
    assert (got, answer["error"]["status"]) == (status, status)
    assert message in answer["error"]["message"]


def test_http_batch_of_a_table_not_allowed_is_403(stocked: Any) -> None:
    status, answer, _ = post({"keys": [{"id": "u1"}]}, path="/items/secret/batch")
    assert (status, answer["error"]["status"]) == (403, 403)


def test_http_batch_other_methods_are_405_allowing_post(stocked: Any) -> None:
    event = function_url_event("GET", "/items/orders/batch", "")
    answer = invoke(event)
    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "POST"


def test_metrics_are_aggregated_and_flushed_once_when_due(
    stocked: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    observe.pending.clear()
    monkeypatch.setattr(observe.pending, "interval_s", 3600.0)
    capsys.readouterr()
    for _ in range(3):
        invoke({"table": "orders", "key": {"pk": "u1", "sk": 1}})
    invoke({"table": "orders", "key": {"pk": "u1"}})  # refused: 400
    assert "_aws" not in capsys.readouterr().out  # nothing published yet
    monkeypatch.setattr(observe.pending, "interval_s", 0.0)
    invoke({"table": "orders", "keys": [{"pk": "u1", "sk": 1}, {"pk": "u2", "sk": 2}]})
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(documents) == 1
    emf = documents[0]
    assert (emf["CacheHit"], emf["CacheMiss"], emf["RequestRejected"]) == ([3.0], [2.0], [1.0])
    assert len(emf["LookupLatencyMs"]) == 4  # three reads and one batch
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "streamcache"


def test_remembered_keys_never_answer_a_key_of_another_type(stocked: Any) -> None:
    assert invoke({"table": "orders", "key": {"pk": "u1", "sk": 1}})["found"] is True
    for wrong in (True, "1"):  # True == 1 and hash(True) == hash(1): the type keeps them apart
        answer = invoke({"table": "orders", "key": {"pk": "u1", "sk": wrong}})
        assert answer["error"]["status"] == 400, wrong
    assert invoke({"table": "orders", "key": {"pk": "u1", "sk": 1.0}})["found"] is True
