"""The invalidator keeps query-cache partition markers, on a single node and on a cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from invalidator.processor import Invalidator
from streamcache import entry
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.layouts import Layouts
from streamcache.local import events
from streamcache.partitions import BASE, marker_key
from streamcache.schema import KeySchemas
from streamcache.settings import Settings

if TYPE_CHECKING:
    from tests.conftest import RedisTarget

DESCRIPTION = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {"IndexName": "byStatus", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}]}
    ],
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}
KEYS = {"pk": {"S": "u1"}, "sk": {"N": "1"}}
BASE_MARKER = marker_key("", "orders", BASE, {"S": "u1"})


@pytest.fixture
def target(any_redis: RedisTarget) -> Iterator[tuple[Any, Invalidator]]:
    settings = Settings.from_env({**any_redis.env, "QUERY_CACHE_TABLES": "orders"})
    client = redis_client(settings, INVALIDATOR_TIMEOUTS)
    layouts = Layouts(settings.query_cache_tables, lambda table: DESCRIPTION)
    schemas = KeySchemas({"orders": ("pk", "sk"), "users": ("id",)}, None)
    yield client, Invalidator(settings, client, schemas, layouts=layouts)
    client.close()


def modify(seq: int, old_status: str, new_status: str) -> dict[str, Any]:
    old = {**KEYS, "status": {"S": old_status}}
    new = {**KEYS, "status": {"S": new_status}}
    return events.record("orders", "MODIFY", KEYS, seq, new=new, old=old)


def marker(client: Any, key: str) -> tuple[bytes, str, int] | None:
    raw = client.get(key)
    if raw is None:
        return None
    return raw[:1], raw[1:41].decode(), int(raw[41:])


def test_a_record_moves_its_base_and_index_markers(target: tuple[Any, Invalidator]) -> None:
    client, invalidator = target
    result = invalidator.process(events.event([modify(500, "open", "shipped")]))
    assert result.response == {"batchItemFailures": []}
    assert result.counts["markers"] == 3
    redis_ms = int(client.time()[0]) * 1000
    for key in (
        BASE_MARKER,
        marker_key("", "orders", "byStatus", {"S": "open"}),
        marker_key("", "orders", "byStatus", {"S": "shipped"}),
    ):
        kind, version, moved_ms = marker(client, key)  # type: ignore[misc]
        assert (kind, version) == (entry.MARKER, entry.pad_version("500"))
        assert abs(moved_ms - redis_ms) < 5000  # Redis's own clock, in ms


def test_an_older_or_repeated_record_never_moves_a_marker_back(target: tuple[Any, Invalidator]) -> None:
    client, invalidator = target
    invalidator.process(events.event([modify(900, "open", "open")]))
    before = client.get(BASE_MARKER)
    result = invalidator.process(events.event([modify(800, "open", "open"), modify(900, "open", "open")]))
    assert result.counts["markers"] == 0
    assert client.get(BASE_MARKER) == before


def test_tables_not_listed_get_no_markers(target: tuple[Any, Invalidator]) -> None:
    client, invalidator = target
    users = events.record("users", "INSERT", {"id": {"S": "a"}}, 5, new={"id": {"S": "a"}})
    result = invalidator.process(events.event([users]))
    assert result.counts["markers"] == 0
    assert [k for k in client.keys("*") if b"{" in k] == []  # type: ignore[union-attr]


def test_records_are_reported_while_the_index_layout_is_unknown(any_redis: RedisTarget) -> None:
    settings = Settings.from_env({**any_redis.env, "QUERY_CACHE_TABLES": "orders"})
    client = redis_client(settings, INVALIDATOR_TIMEOUTS)

    def unreachable(table: str) -> dict[str, Any]:
        raise TimeoutError("DescribeTable timed out")

    invalidator = Invalidator(
        settings,
        client,
        KeySchemas({"orders": ("pk", "sk")}, None),
        layouts=Layouts(settings.query_cache_tables, unreachable),
    )
    first = modify(700, "a", "b")
    result = invalidator.process(events.event([first, modify(701, "b", "c")]))
    seqs = [f["itemIdentifier"] for f in result.response["batchItemFailures"]]
    assert seqs == [first["dynamodb"]["SequenceNumber"], str(701)]
    client.close()
