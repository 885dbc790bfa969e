"""The reader's core behaviour on a 3-master cluster (REDIS_CLUSTER=true).

The reader's own suites run on a single node; this module re-plays a few of
their scenarios with the reader and the invalidator both talking to the local
cluster: cache-aside, stream-written items, and the read/fill race (lease and
fill are single-key scripts, so they work per slot).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster

from streamcache.local import events
from streamcache.local.inspect import holding
from tests.functional.readerkit import boto3_item, count_reads, deliver
from tests.functional.test_reader_races import PLAIN_KEY, V1, V2, modify, plain, race, remove

SEQ = events.FIRST_SEQUENCE


@pytest.fixture
def invalidator_env(
    invalidator_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cluster_url: str
) -> dict[str, str]:
    cluster = {"REDIS_URL": cluster_url, "REDIS_CLUSTER": "true"}
    for name, value in cluster.items():
        monkeypatch.setenv(name, value)
    return {**invalidator_env, **cluster}


@pytest.fixture
def cache(cluster_url: str) -> Iterator[Any]:
    client = RedisCluster.from_url(cluster_url)
    yield client
    client.close()


def test_miss_then_hit_on_a_cluster(read, dynamodb, cache) -> None:
    dynamodb.put_item(TableName="orders", Item=boto3_item(V1))
    assert read(PLAIN_KEY) == {"found": True, "item": plain(V1), "source": "dynamodb"}
    assert read(PLAIN_KEY) == {"found": True, "item": plain(V1), "source": "cache"}
    assert holding(cache, "orders-u1-7")["state"] == "item (reader fill)"


def test_stream_written_items_are_served_from_the_cluster(read) -> None:
    keys = [{"pk": {"S": f"u{i}"}, "sk": {"N": "1"}} for i in range(12)]  # spread over the masters
    deliver(*[events.record("orders", "INSERT", k, SEQ + i, new=events.item(k)) for i, k in enumerate(keys)])
    counting = count_reads()
    for i in range(12):
        assert read({"pk": f"u{i}", "sk": 1})["source"] == "cache"
    assert counting.calls == 0


@pytest.mark.parametrize("write", [modify, remove], ids=["modify", "remove"])
def test_a_write_between_read_and_fill_wins_on_a_cluster(read, dynamodb, cache, write) -> None:
    dynamodb.put_item(TableName="orders", Item=V1)
    answer = race(read, write(dynamodb))
    assert answer == {"found": True, "item": plain(V1), "source": "dynamodb"}
    assert holding(cache, "orders-u1-7")["state"] != "item (reader fill)"
    expected = V2 if write is modify else None
    for _ in range(2):
        assert read(PLAIN_KEY)["item"] == plain(expected)
