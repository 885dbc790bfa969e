"""``CachedTable.get_items``: order, repeats, chunking, races and failures, on moto and real Redis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import boto3
import pytest
import redis

from streamcache import Cache, CachedTable
from streamcache.codec import Typed
from streamcache.local import events
from streamcache.local.redis_cluster import RedisClusterNodes
from streamcache.local.redis_server import RedisServer
from tests.conftest import RedisTarget
from tests.functional.readerkit import deliver
from tests.functional.test_library import typed

EXISTING = 120  # more than one BatchGetItem (100 keys) of misses


def key(n: int) -> dict[str, Any]:
    return {"pk": f"u-{n}", "sk": n}


@pytest.fixture
def orders(reader_env: dict[str, str]) -> Any:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("orders")
    with table.batch_writer() as batch:
        for n in range(EXISTING):
            batch.put_item(Item={**key(n), "v": Decimal(n) / 7, "tag": f"item {n}"})
    return table


def batch_sizes(table: Any) -> list[int]:
    """Record how many keys each BatchGetItem call asks for."""
    sizes: list[int] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        sizes.extend(len(request["Keys"]) for request in params["RequestItems"].values())

    table.meta.client.meta.events.register("provide-client-params.dynamodb.BatchGetItem", spy)
    return sizes


def expected(table: Any, keys: Sequence[dict[str, Any]]) -> list[Any]:
    return [typed(table.get_item(Key=k).get("Item")) for k in keys]


def test_answers_in_order_with_repeats_and_absent_keys_chunked_by_100(orders: Any, redis_url: str) -> None:
    cached = CachedTable(orders, Cache(redis_url))
    keys = [key(n) for n in (5, 500, 5, *range(EXISTING), 501, 7)]  # repeats and absent keys
    sizes = batch_sizes(orders)
    first = cached.get_items(keys)
    assert [typed(item) for item in first] == expected(orders, keys)
    assert sizes == [100, 22]  # 122 distinct keys, each read once
    second = cached.get_items(keys)
    assert [typed(item) for item in second] == expected(orders, keys)
    assert sizes == [100, 22]  # all answered by Redis this time, absent keys included
    counters = cached.cache.counters.snapshot()
    assert (counters["misses"], counters["fills"], counters["hits"]) == (122, 122, 122)


def test_no_keys_no_calls(orders: Any, redis_url: str) -> None:
    sizes = batch_sizes(orders)
    assert CachedTable(orders, Cache(redis_url)).get_items([]) == []
    assert sizes == []


def test_get_items_works_on_a_cluster_too(orders: Any, any_redis: RedisTarget) -> None:
    cached = CachedTable(orders, Cache(any_redis.url, cluster=any_redis.cluster))
    keys = [key(n) for n in range(0, 30, 3)] + [key(999)]
    assert [typed(i) for i in cached.get_items(keys)] == expected(orders, keys)
    assert [typed(i) for i in cached.get_items(keys)] == expected(orders, keys)
    assert cached.cache.counters.hits == len(keys)


class AfterRead:
    """The table port, running ``hook`` once right after a batch's DynamoDB read returns."""

    def __init__(self, inner: Any, hook: Callable[[], None]) -> None:
        self.inner, self.hook = inner, hook

    def get(self, table: str, key: Typed) -> Typed | None:
        return self.inner.get(table, key)  # type: ignore[no-any-return]

    def get_many(self, table: str, keys: Sequence[Typed]) -> list[Typed | None]:
        found: list[Typed | None] = self.inner.get_many(table, keys)
        self.hook()
        return found


def test_a_write_between_a_batch_lease_and_its_fill_is_never_overwritten(orders: Any, redis_url: str) -> None:
    cached = CachedTable(orders, Cache(redis_url))
    stream_keys = {"pk": {"S": "u-3"}, "sk": {"N": "3"}}
    newer = {**stream_keys, "v": {"N": "99"}, "tag": {"S": "newer"}}

    def write_lands() -> None:
        orders.put_item(Item={**key(3), "v": 99, "tag": "newer"})
        deliver(events.record("orders", "MODIFY", stream_keys, 500, new=newer))

    cached._reads.table = AfterRead(cached._reads.table, write_lands)
    answers = cached.get_items([key(2), key(3), key(4)])
    assert answers[1] is not None and answers[1]["tag"] == "item 3"  # consistent when read
    assert cached.cache.counters.snapshot()["fills_rejected"] == 1
    assert cached.cache.counters.snapshot()["fills"] == 2
    after = cached.get_items([key(3)])[0]
    assert after is not None and after["tag"] == "newer"  # the invalidator's write stands


def test_redis_failing_mid_batch_answers_hits_and_reads_the_rest(orders: Any, redis_url: str) -> None:
    cached = CachedTable(orders, Cache(redis_url))
    cached.get_items([key(1), key(2)])  # cached
    lookups = cached.cache.lookups

    def lease_fails(keys: Sequence[str]) -> Any:
        raise redis.ConnectionError("connection reset mid-batch")

    lookups.lease_many = lease_fails  # type: ignore[method-assign]
    keys = [key(1), key(5), key(2), key(6)]
    assert [typed(i) for i in cached.get_items(keys)] == expected(orders, keys)
    counters = cached.cache.counters.snapshot()
    assert (counters["hits"], counters["redis_errors"], counters["fills"]) == (2, 2, 2)


def test_redis_down_answers_from_dynamodb(orders: Any, own_redis: RedisServer) -> None:
    cached = CachedTable(orders, Cache(own_redis.url))
    keys = [key(1), key(2), key(700)]
    cached.get_items(keys)
    own_redis.stop()
    for _ in range(5):  # errors, then the breaker skips Redis altogether
        assert [typed(i) for i in cached.get_items(keys)] == expected(orders, keys)
        assert typed(cached.get_item(Key=key(1))["Item"]) == expected(orders, [key(1)])[0]
    counters = cached.cache.counters.snapshot()
    # Three failed attempts (3 + 1 + 3 reads met the error) open the breaker; the other 13 skip Redis.
    assert (counters["hits"], counters["redis_errors"], counters["bypassed"]) == (0, 7, 13)


def test_redis_too_slow_answers_from_dynamodb_within_the_timeout(orders: Any, own_redis: RedisServer) -> None:
    cached = CachedTable(orders, Cache(own_redis.url))
    keys = [key(1), key(2)]
    cached.get_items(keys)
    with redis.Redis.from_url(own_redis.url) as admin:
        admin.execute_command("CLIENT", "PAUSE", 2000, "ALL")
        try:
            assert [typed(i) for i in cached.get_items(keys)] == expected(orders, keys)
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
    counters = cached.cache.counters.snapshot()
    assert (counters["hits"], counters["redis_errors"]) == (0, 2)  # both reads timed out on Redis


def command_getkeys_calls(cluster: RedisClusterNodes) -> int:
    calls = 0
    for node in cluster.nodes:
        with redis.Redis(port=node.port) as client:
            calls += client.info("commandstats").get("cmdstat_command|getkeys", {}).get("calls", 0)
    return calls


def test_cluster_batches_route_scripts_by_slot_without_hidden_round_trips(
    orders: Any, redis_cluster: RedisClusterNodes, cluster_url: str
) -> None:
    cached = CachedTable(orders, Cache(cluster_url, cluster=True))
    keys = [key(n) for n in range(40)] + [key(900)]
    before = command_getkeys_calls(redis_cluster)
    first = cached.get_items(keys)  # scripts flushed: every node answers NOSCRIPT first
    assert command_getkeys_calls(redis_cluster) == before
    assert [typed(i) for i in first] == expected(orders, keys)
    assert cached.cache.counters.snapshot()["fills"] == len(keys)
    assert [typed(i) for i in cached.get_items(keys)] == expected(orders, keys)
    assert cached.cache.counters.snapshot()["hits"] == len(keys)
