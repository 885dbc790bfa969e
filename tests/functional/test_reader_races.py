"""No stale fill (CONTRACT 4 and 5.3): a write delivered between the reader's read and fill.

Each race is forced, not slept into: the reader's table port is wrapped so that
the item is written to DynamoDB and its stream record handed to the invalidator
right after ``GetItem`` returns and before ``fill.lua`` runs. After each race the
next two reads must answer the new state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reader import runtime as reader_runtime
from streamcache.local import events
from streamcache.local.inspect import holding
from tests.functional.readerkit import (
    count_reads,
    deliver,
)

KEYS = {"pk": {"S": "u1"}, "sk": {"N": "7"}}
PLAIN_KEY = {"pk": "u1", "sk": 7}
V1 = events.item(KEYS, value={"S": "v1"})
V2 = events.item(KEYS, value={"S": "v2"})
SEQ = events.FIRST_SEQUENCE


def plain(item: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if item is None else {"pk": "u1", "sk": 7, "value": item["value"]["S"]}


def race(reader: Callable[..., dict[str, Any]], write: Callable[[], None]) -> dict[str, Any]:
    """One read whose DynamoDB GetItem is followed, before its fill, by ``write``."""
    count_reads(after=write)
    return reader(PLAIN_KEY)


def modify(db: Any, view: str = "NEW_AND_OLD_IMAGES") -> Callable[[], None]:
    def write() -> None:
        db.put_item(TableName="orders", Item=V2)
        deliver(events.record("orders", "MODIFY", KEYS, SEQ + 1, new=V2, old=V1, view=view))

    return write


def remove(db: Any) -> Callable[[], None]:
    def write() -> None:
        db.delete_item(TableName="orders", Key=KEYS)
        deliver(events.record("orders", "REMOVE", KEYS, SEQ + 1, old=V1))

    return write


def insert(db: Any) -> Callable[[], None]:
    def write() -> None:
        db.put_item(TableName="orders", Item=V2)
        deliver(events.record("orders", "INSERT", KEYS, SEQ + 1, new=V2))

    return write


@pytest.mark.parametrize(
    "case",
    [
        pytest.param((V1, modify, V2), id="modify"),
        pytest.param((V1, remove, None), id="remove"),
        pytest.param((V1, lambda db: modify(db, "KEYS_ONLY"), V2), id="keys-only"),
        pytest.param((None, insert, V2), id="insert-vs-not-found-fill"),
    ],
)
def test_a_write_between_read_and_fill_is_never_overwritten(read, dynamodb, cache, case) -> None:
    start, write, expected = case
    if start is not None:
        dynamodb.put_item(TableName="orders", Item=start)
    answer = race(read, write(dynamodb))
    # What was read was consistent when read: the racing reader may answer it ...
    assert answer == {"found": start is not None, "item": plain(start), "source": "dynamodb"}
    # ... but its fill was rejected: the cache holds the write, not the read.
    assert holding(cache, "orders-u1-7")["state"] != "item (reader fill)"
    for _ in range(2):
        assert read(PLAIN_KEY)["item"] == plain(expected)


def test_a_record_delivered_after_the_fill_replaces_it(read, dynamodb, cache) -> None:
    """Stream lag: the fill lands first (with v1), then v2's record arrives."""
    dynamodb.put_item(TableName="orders", Item=V1)
    assert read(PLAIN_KEY)["item"] == plain(V1)
    assert holding(cache, "orders-u1-7")["state"] == "item (reader fill)"
    modify(dynamodb)()
    for _ in range(2):
        assert read(PLAIN_KEY)["item"] == plain(V2)


def test_the_racing_fill_is_counted_as_rejected(reader_env, dynamodb, monkeypatch) -> None:
    import reader.handler as reader_handler
    from reader import observe

    published: list[str] = []
    original = observe.metrics.add_metric
    monkeypatch.setattr(
        observe.metrics, "add_metric", lambda **kw: (published.append(kw["name"]), original(**kw))[1]
    )
    dynamodb.put_item(TableName="orders", Item=V1)
    count_reads(after=modify(dynamodb))
    reader_handler.handler({"key": PLAIN_KEY}, None)
    runtime = reader_runtime.built()
    assert runtime is not None
    observe.flush(runtime.cache.counters)  # metrics are aggregated, then flushed when due
    assert "FillRejected" in published
    assert "CacheMiss" in published
