"""The reader with its near cache (on by default): repeated reads from memory, writes still seen."""

from __future__ import annotations

from typing import Any

import pytest

from reader import observe
from reader import runtime as reader_runtime
from streamcache.local import events
from tests.functional.readerkit import deliver

KEYS = {"pk": {"S": "near"}, "sk": {"N": "1"}}


def put(table: Any, value: str) -> dict[str, Any]:
    item = events.item(KEYS, v={"S": value})
    table.put_item(TableName="orders", Item=item)
    return item


def near_cache() -> Any:
    runtime = reader_runtime.built()
    assert runtime is not None and runtime.cache.near is not None
    return runtime.cache.near


def test_repeated_reads_come_from_memory_and_a_write_is_still_seen(read, dynamodb) -> None:
    first = put(dynamodb, "one")
    assert read({"pk": "near", "sk": 1})["source"] == "dynamodb"  # miss: lease, GetItem, fill
    for _ in range(5):
        assert read({"pk": "near", "sk": 1})["item"]["v"] == "one"
    near = near_cache()
    assert near.counters.hits >= 3  # the first hit read Redis and kept the entry
    # A write reaches Redis through the invalidator; its invalidation reaches the near cache.
    second = put(dynamodb, "two")
    deliver(events.record("orders", "MODIFY", KEYS, 5000, new=second, old=first))
    near.confirm_now()  # what a read does once the bound has passed: one round trip
    assert read({"pk": "near", "sk": 1})["item"]["v"] == "two"


def test_near_cache_counts_are_published(read, dynamodb, monkeypatch: pytest.MonkeyPatch) -> None:
    published: dict[str, float] = {}
    original = observe.metrics.add_metric
    monkeypatch.setattr(
        observe.metrics,
        "add_metric",
        lambda **kw: (published.__setitem__(kw["name"], kw["value"]), original(**kw))[1],
    )
    put(dynamodb, "one")
    for _ in range(4):
        read({"pk": "near", "sk": 1})
    runtime = reader_runtime.built()
    assert runtime is not None
    observe.flush(runtime.cache.counters, runtime.cache.near)
    assert published["NearCacheHit"] >= 2
    assert published["CacheHit"] >= published["NearCacheHit"]


def test_near_cache_items_zero_turns_it_off(read, dynamodb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEAR_CACHE_ITEMS", "0")
    reader_runtime.reset()
    put(dynamodb, "one")
    read({"pk": "near", "sk": 1})
    runtime = reader_runtime.built()
    assert runtime is not None and runtime.cache.near is None
