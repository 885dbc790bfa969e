"""Hostile or mistaken input, end to end: both handlers answer or report, never raise, never serve stale.

The reader against moto and a real redis-server; the invalidator on the same Redis.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import pytest

import invalidator.handler as invalidator_handler
import reader.handler as reader_handler
from reader import runtime as reader_runtime
from streamcache import aws
from streamcache.local import events
from tests.functional.readerkit import function_url_event, http_api_event

SEQ = events.FIRST_SEQUENCE


def http_get(query: str, table: str = "orders") -> tuple[int, dict[str, Any]]:
    answer = reader_handler.handler(function_url_event("GET", f"/items/{table}", query), None)
    return answer["statusCode"], json.loads(answer["body"])


def order(sk: str, seq: int, pk: str = "u1") -> dict[str, Any]:
    keys = {"pk": {"S": pk}, "sk": {"N": sk}}
    return events.record("orders", "INSERT", keys, seq, new=events.item(keys, v={"S": "x"}))


def reported(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


# -- numbers outside DynamoDB's range (|x| >= 1E+126, 0 < |x| < 1E-130) ----------


@pytest.mark.parametrize(
    ("sk", "says"),
    [
        ("1e999999999", "below 1E+126"),  # was a 500: decimal.Overflow
        ("1e999999", "below 1E+126"),  # was a 1 MB cache key and lease
        ("1e126", "below 1E+126"),
        ("-1e126", "below 1E+126"),
        ("1e-999999999", "at least 1E-130"),  # was read as sk=0
        ("1e-131", "at least 1E-130"),
        ("1e99999999999999999999999", "not a number"),
    ],
)
def test_reader_refuses_numbers_outside_dynamodb_range_naming_the_attribute(
    reader_env, dynamodb, cache, sk: str, says: str
) -> None:
    dynamodb.put_item(TableName="orders", Item={"pk": {"S": "u1"}, "sk": {"N": "0"}})
    status, body = http_get(f"pk=u1&sk={sk}")
    assert status == 400
    assert "'sk'" in body["error"]["message"] and says in body["error"]["message"]
    assert cache.dbsize() == 0  # no key, no lease


def test_reader_serves_the_edges_of_dynamodb_range(reader_env, dynamodb) -> None:
    for sk in ("9.9999999999999999999999999999999999999E+125", "1E-130", "-1E-130"):
        dynamodb.put_item(TableName="orders", Item={"pk": {"S": "edge"}, "sk": {"N": sk}})
        status, body = http_get(f"pk=edge&sk={quote(sk)}&format=dynamodb")
        assert (status, body["found"]) == (200, True), (sk, body)


def test_invalidator_reports_the_out_of_range_record_and_applies_the_rest(invoke, cache) -> None:
    batch = [order("1", SEQ), order("1e999999999", SEQ + 1), order("2", SEQ + 2, pk="u2")]
    response = invoke(events.event(batch))
    assert reported(response) == [str(SEQ + 1), str(SEQ + 2)]
    assert cache.exists("orders-u1-1") and cache.exists("orders-u2-2")


def test_a_huge_range_value_never_becomes_a_key(invoke, cache) -> None:
    keys = {"pk": {"S": "u1"}, "sk": {"N": "1"}}
    record = events.record("orders", "INSERT", {**keys, "pk": {"S": "p" * 5000}}, SEQ)
    assert reported(invoke(events.event([record]))) == [str(SEQ)]
    assert cache.dbsize() == 0


# -- KEY_SCHEMA disagreeing with the table -------------------------------------


@pytest.mark.parametrize(
    "configured",
    [["sk", "pk"], ["pk"]],
    ids=["swapped", "range-missing"],
)
@pytest.mark.usefixtures("reader_env")
def test_reader_refuses_a_key_schema_that_disagrees_with_the_table(
    dynamodb, monkeypatch, capsys, caplog, configured: list[str]
) -> None:
    monkeypatch.setenv("KEY_SCHEMA", json.dumps({"orders": configured}))
    reader_runtime.reset()
    dynamodb.put_item(TableName="orders", Item={"pk": {"S": "u1"}, "sk": {"N": "1"}})
    for _ in range(2):  # remembered: still refused, never served
        status, body = http_get("pk=u1&sk=1")
        assert status == 503
        assert f"KEY_SCHEMA for table 'orders' is {configured}" in body["error"]["message"]
        assert "['pk', 'sk']" in body["error"]["message"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and all("KEY_SCHEMA for table 'orders'" in e for e in errors)
    assert '"KeySchemaMismatch":[1.0]' in capsys.readouterr().out.replace(" ", "")


def test_reader_range_key_extra_in_key_schema_is_refused(reader_env, dynamodb, monkeypatch) -> None:
    monkeypatch.setenv("KEY_SCHEMA", json.dumps({"users": ["id", "at"]}))
    reader_runtime.reset()
    status, body = http_get("id=ann", table="users")
    assert status == 503 and "['id', 'at']" in body["error"]["message"]


def test_invalidator_reports_records_whose_keys_disagree_with_key_schema(invoke, capsys, caplog) -> None:
    users = {"id": {"S": "ann"}, "at": {"N": "7"}}  # KEY_SCHEMA says users has only "id"
    bad = events.record("users", "INSERT", users, SEQ + 1, new=events.item(users, secret={"S": "hunter2"}))
    response = invoke(events.event([order("1", SEQ), bad]))
    assert reported(response) == [str(SEQ + 1)]
    out = capsys.readouterr().out
    (warning,) = [r for r in caplog.records if r.getMessage() == "record has no usable cache key"]
    logged = json.dumps(warning.__dict__, default=str)
    assert str(SEQ + 1) in logged and "KEY_SCHEMA for table 'users' is ['id']" in logged
    assert "hunter2" not in logged + out and "ann" not in logged + out  # names only, never contents
    assert '"KeySchemaMismatch":[1.0]' in out.replace(" ", "")


# -- lone surrogates, malformed HTTP events, methods ---------------------------


def test_reader_refuses_a_lone_surrogate_in_a_key(reader_env, cache) -> None:
    answer = reader_handler.handler({"key": {"pk": "a\ud800", "sk": 1}}, None)
    assert answer["error"]["status"] == 400
    assert "'pk'" in answer["error"]["message"] and "surrogate" in answer["error"]["message"]
    assert cache.dbsize() == 0


def test_invalidator_reports_a_record_with_a_lone_surrogate(invoke, cache) -> None:
    keys = {"pk": {"S": "\udfff"}, "sk": {"N": "1"}}
    bad = events.record("orders", "INSERT", keys, SEQ + 1, new=events.item(keys))
    bad_table = order("2", SEQ + 2)
    bad_table["eventSourceARN"] = bad_table["eventSourceARN"].replace("table/orders", "table/\ud800")
    response = invoke(events.event([order("1", SEQ), bad, bad_table, order("3", SEQ + 3)]))
    assert reported(response) == [str(SEQ + n) for n in (1, 2, 3)]
    assert cache.exists("orders-u1-1") and cache.exists("orders-u1-3")


BUILDERS = {"function-url": function_url_event, "http-api": http_api_event}


def _without(event: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = event
    for name in path[:-1]:
        node = node[name]
    del node[path[-1]]
    return event


@pytest.mark.parametrize(
    ("builder", "path", "says"),
    [
        ("function-url", ("requestContext", "http", "method"), "requestContext.http.method"),
        ("function-url", ("rawPath",), "rawPath"),
        ("http-api", ("requestContext", "http", "method"), "requestContext.http.method"),
        ("http-api", ("rawPath",), "rawPath"),
        ("http-api", ("requestContext", "stage"), "requestContext.stage"),
    ],
)
def test_http_event_missing_a_field_is_a_400_answer(reader_env, builder, path, says) -> None:
    event = _without(BUILDERS[builder]("GET", "/items/orders", "pk=u1&sk=1"), path)
    answer = reader_handler.handler(event, None)
    assert answer["statusCode"] == 400
    assert says in json.loads(answer["body"])["error"]["message"]


@pytest.mark.parametrize("builder", sorted(BUILDERS))
@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW"])
def test_trace_and_unknown_methods_are_405(reader_env, builder, method) -> None:
    answer = reader_handler.handler(BUILDERS[builder](method, "/items/orders", "pk=u1&sk=1"), None)
    assert (answer["statusCode"], answer["headers"]["Allow"]) == (405, "GET")


# -- DescribeTable: remembered when it fails, bounded by the remaining time ------


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def describe_calls(monkeypatch, fake_aws) -> list[str]:
    """Every DescribeTable the functions attempt; each one fails (an unreachable endpoint)."""
    calls: list[str] = []

    class Failing:
        def describe_table(self, TableName: str) -> Any:
            calls.append(TableName)
            raise ConnectionError("endpoint unreachable")

    def client(*args: Any, **kwargs: Any) -> Failing:
        return Failing()

    client.cache_clear = lambda: None  # type: ignore[attr-defined]  # like the lru_cache it replaces
    monkeypatch.setattr(aws, "client", client)
    return calls


def test_a_failed_describe_is_made_once_for_a_whole_batch(invoke, describe_calls) -> None:
    keys = {"id": {"S": "x"}, "at": {"N": "1"}}  # two attributes: the hash cannot be guessed
    batch = [events.record("ghosts", "INSERT", keys, SEQ + i) for i in range(200)]
    response = invoke(events.event(batch))
    assert len(reported(response)) == 200
    assert describe_calls == ["ghosts"]


def test_no_describe_starts_without_time_to_finish(invalidator_env, describe_calls) -> None:
    keys = {"id": {"S": "x"}, "at": {"N": "1"}}
    event = events.event([events.record("ghosts", "INSERT", keys, SEQ)])
    response = invalidator_handler.handler(event, Context(remaining_ms=1000))
    assert reported(response) == [str(SEQ)]
    assert describe_calls == []


def test_reader_describe_is_bounded_by_the_remaining_time(reader_env, describe_calls) -> None:
    answer = reader_handler.handler({"key": {"id": "x"}, "table": "ghosts"}, Context(remaining_ms=1000))
    assert answer["error"]["status"] == 503
    assert describe_calls == []
    answer = reader_handler.handler({"key": {"id": "x"}, "table": "ghosts"}, Context(remaining_ms=60_000))
    answer = reader_handler.handler({"key": {"id": "x"}, "table": "ghosts"}, Context(remaining_ms=60_000))
    assert answer["error"]["status"] == 503
    assert describe_calls == ["ghosts"]  # the second failure is remembered


# -- ApproximateCreationDateTime that is not a finite number -------------------


@pytest.mark.parametrize("created", [float("-inf"), float("inf"), float("nan"), 10**400])
def test_non_finite_creation_time_never_reaches_emf(invoke, capsys, created: float) -> None:
    record = order("1", SEQ)
    record["dynamodb"]["ApproximateCreationDateTime"] = created
    assert invoke(events.event([record])) == {"batchItemFailures": []}
    lines = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert lines
    for line in lines:
        json.loads(line, parse_constant=_refuse)  # Infinity / NaN are not JSON


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} in an EMF line")
