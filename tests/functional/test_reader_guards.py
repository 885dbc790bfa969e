"""Two guards of the read side that moto cannot show by itself.

- Every read of the table is strongly consistent: the reader's single and
  batch reads, and a ``CachedTable``'s fills (``GetItem``, ``BatchGetItem``).
  moto ignores ``ConsistentRead``, so the flag is checked on the wire: a
  botocore hook on the default session sees every DynamoDB call any client
  or resource makes and records each item read sent without it. An
  eventually consistent read can return the item as it was before a write
  whose invalidation already ran; filling that would leave the cache stale
  until the next write.
- With neither ``TABLE_NAME`` nor ``ALLOWED_TABLES`` set, the allow-list is
  empty and every table is refused (403): an empty list never means "all".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

import reader.handler as reader_handler
from reader import runtime as reader_runtime
from streamcache import aws
from tests.functional.readerkit import boto3_item, function_url_event

ITEM_READS = ("GetItem", "BatchGetItem", "Query")


@dataclass
class WireReads:
    """The DynamoDB item reads seen on the wire, and those sent without ConsistentRead=True."""

    seen: list[str] = field(default_factory=list)
    eventual: list[str] = field(default_factory=list)

    def check(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = model.name
        if name not in ITEM_READS:
            return
        self.seen.append(name)
        if not all(_consistent(name, p) for p in _read_params(name, params)):
            self.eventual.append(f"{name} {json.dumps(params, default=str)[:200]}")


def _read_params(name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """BatchGetItem carries the flag per table; the others at the top level."""
    if name == "BatchGetItem":
        return list(params.get("RequestItems", {}).values()) or [{}]
    return [params]


def _consistent(name: str, params: dict[str, Any]) -> bool:
    # A Query on a global secondary index cannot be consistent (DynamoDB refuses the flag);
    # the read side must not cache what such a query answers as if it were consistent.
    if name == "Query" and "IndexName" in params:
        return "ConsistentRead" not in params
    return params.get("ConsistentRead") is True


@pytest.fixture
def wire_reads(reader_env: dict[str, str]) -> Iterator[WireReads]:
    """Records every DynamoDB read of clients made from now on (the reader's included)."""
    reads = WireReads()
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-parameter-build.dynamodb", reads.check)
    aws.client.cache_clear()  # the reader's client must be made after the hook
    reader_runtime.reset()
    yield reads
    session.events.unregister("before-parameter-build.dynamodb", reads.check)
    aws.client.cache_clear()


def test_every_table_read_of_the_reader_is_strongly_consistent(read, dynamodb, wire_reads) -> None:
    dynamodb.put_item(TableName="orders", Item=boto3_item({"pk": {"S": "u1"}, "sk": {"N": "1"}}))
    assert read({"pk": "u1", "sk": 1})["source"] == "dynamodb"  # a fill
    assert read({"pk": "nobody", "sk": 2})["found"] is False  # a negative fill
    url = function_url_event("GET", "/items/orders", "pk=u2&sk=3")
    assert reader_handler.handler(url, None)["statusCode"] == 404
    assert wire_reads.seen.count("GetItem") == 3, wire_reads.seen  # every miss went to the table
    assert wire_reads.eventual == []


def test_batches_of_the_reader_are_strongly_consistent(read, dynamodb, wire_reads) -> None:
    dynamodb.put_item(TableName="orders", Item=boto3_item({"pk": {"S": "u1"}, "sk": {"N": "1"}}))
    keys = [{"pk": "u1", "sk": 1}, {"pk": "u2", "sk": 2}, {"pk": "u1", "sk": 1}]
    answer = reader_handler.handler({"table": "orders", "keys": keys}, None)
    assert [a["found"] for a in answer["items"]] == [True, False, True], answer
    assert "BatchGetItem" in wire_reads.seen, wire_reads.seen  # the misses went as one batch
    assert wire_reads.eventual == []


def test_every_table_read_of_the_library_is_strongly_consistent(
    reader_env: dict[str, str], dynamodb, wire_reads
) -> None:
    import streamcache

    dynamodb.put_item(TableName="orders", Item=boto3_item({"pk": {"S": "u1"}, "sk": {"N": "1"}}))
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("orders")
    orders = streamcache.CachedTable(table, streamcache.Cache(reader_env["REDIS_URL"]))
    assert orders.get_item(Key={"pk": "u1", "sk": 1})["Item"]["pk"] == "u1"  # a miss: filled
    assert orders.get_item(Key={"pk": "u1", "sk": 1})["Item"]["pk"] == "u1"  # a hit: no read
    assert orders.get_items([{"pk": "u2", "sk": 2}, {"pk": "u3", "sk": 3}]) == [None, None]
    assert wire_reads.seen == ["GetItem", "BatchGetItem"], wire_reads.seen
    assert wire_reads.eventual == []


def test_the_wire_check_catches_an_eventually_consistent_read(dynamodb, wire_reads) -> None:
    # The check itself can fail: reads without the flag (or with it false) are recorded.
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.get_item(TableName="orders", Key={"pk": {"S": "u1"}, "sk": {"N": "1"}})
    client.batch_get_item(RequestItems={"orders": {"Keys": [{"pk": {"S": "u1"}, "sk": {"N": "1"}}]}})
    client.query(
        TableName="orders",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "u1"}},
        ConsistentRead=False,
    )
    assert [line.split()[0] for line in wire_reads.eventual] == list(ITEM_READS)


@pytest.fixture
def no_allow_list(reader_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLE_NAME")
    monkeypatch.delenv("ALLOWED_TABLES")
    reader_runtime.reset()


@pytest.mark.parametrize("table", ["orders", "users"])
def test_without_table_name_or_allowed_tables_every_table_is_refused(no_allow_list, dynamodb, table) -> None:
    dynamodb.put_item(TableName="orders", Item=boto3_item({"pk": {"S": "u1"}, "sk": {"N": "1"}}))
    key = {"pk": "u1", "sk": 1} if table == "orders" else {"id": "u1"}
    direct = reader_handler.handler({"table": table, "key": key}, None)
    assert direct["error"]["status"] == 403, direct
    assert f"{table!r} is not readable" in direct["error"]["message"]
    query = "pk=u1&sk=1" if table == "orders" else "id=u1"
    answer = reader_handler.handler(function_url_event("GET", f"/items/{table}", query), None)
    assert answer["statusCode"] == 403, answer


def test_allowed_tables_when_set_is_the_whole_list_even_for_the_default_table(
    reader_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, dynamodb
) -> None:
    # TABLE_NAME is only the default of ALLOWED_TABLES: once the list is set, it alone decides.
    monkeypatch.setenv("TABLE_NAME", "orders")
    monkeypatch.setenv("ALLOWED_TABLES", "users")
    reader_runtime.reset()
    refused = reader_handler.handler({"key": {"pk": "u1", "sk": 1}}, None)  # the default table
    assert refused["error"]["status"] == 403, refused
    assert "'orders' is not readable" in refused["error"]["message"]
    allowed = reader_handler.handler({"table": "users", "key": {"id": "u1"}}, None)
    assert allowed == {"found": False, "item": None, "source": "dynamodb"}
