"""The library (``streamcache.CachedTable``) and the reader's hit path, next to the bare calls they wrap.

Ratios of p50s measured in this run, calls alternating with their baseline:

- ``get_item`` hit vs redis-py GET + ``entry.decode`` + item (target <= 1.3x);
- ``get_item`` miss (lease, GetItem, fill; the GET is skipped once reads mostly miss)
  vs boto3 ``Table.get_item`` (<= 1.2x);
- ``get_items`` of 100 hits vs one raw MGET of the same keys + decode (<= 1.5x);
- ``get_items`` of 100 misses vs one boto3 ``batch_get_item`` of them (<= 1.3x);
- the reader's decorated handler on a hit vs GET + decode (<= 1.3x), in both answer formats
  (``plain`` converts the item to plain JSON, ``dynamodb`` answers it as stored).

DynamoDB is moto in process: a miss's DynamoDB side is moto's Python, not a
network round trip, which flatters nothing here (both sides pay it).
Run alone with ``python -m bench.library [--quick]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.reader import _get_decode, _paired, create_table, in_reader_env, request
from bench.rig import Rig, run_alone
from bench.table import render, times
from bench.workload import TABLE, typed_keys

BATCH = 100
TARGETS = {
    "get_item hit": 1.3,
    "get_item miss": 1.2,
    "get_items 100 hits": 1.5,
    "get_items 100 misses": 1.3,
    "reader handler hit": 1.3,
    "reader handler hit, format dynamodb": 1.3,
}


def run(rig: Rig) -> dict[str, Any]:
    return in_reader_env(rig, _measure)


def python_key(index: int) -> dict[str, Any]:
    return {"pk": typed_keys(index)["pk"]["S"], "sk": index}


def _measure(rig: Rig) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    import reader.handler as reader_handler
    from streamcache import Cache, CachedTable
    from streamcache.aws import client as aws_client

    calls = 200 if rig.quick else 3000
    with mock_aws():
        aws_client.cache_clear()
        create_table(boto3.client("dynamodb", region_name="us-east-1"), 2 * BATCH + 1)
        orders = boto3.resource("dynamodb", region_name="us-east-1").Table(TABLE)
        redis = rig.client()
        redis.flushall()
        cache = Cache(rig.redis_url, near_cache_items=0)  # the Redis path; bench.near has the near cache
        cached = CachedTable(orders, cache)
        key = cache.key(TABLE, typed_keys(1), ("pk", "sk"))
        get_decode = _bound(_get_decode, redis, key)
        hits = [python_key(i) for i in range(BATCH)]
        misses = [python_key(i) for i in range(BATCH, 2 * BATCH)]
        hit_keys = [cache.key(TABLE, typed_keys(i), ("pk", "sk")) for i in range(BATCH)]
        miss_keys = [cache.key(TABLE, typed_keys(i), ("pk", "sk")) for i in range(BATCH, 2 * BATCH)]
        cached.get_item(Key=python_key(1))
        cached.get_items(hits)
        reader_handler.reset()
        reader_handler.handler(request(1), None)
        latency = {
            "get_item hit": _paired(lambda: cached.get_item(Key=python_key(1)), get_decode, calls),
            "get_item miss": _paired(
                lambda: cached.get_item(Key=python_key(2 * BATCH)),
                lambda: orders.get_item(Key=python_key(2 * BATCH)),
                max(50, calls // 10),
                before=lambda: redis.delete(cache.key(TABLE, typed_keys(2 * BATCH), ("pk", "sk"))),
            ),
            "get_items 100 hits": _paired(
                lambda: cached.get_items(hits), lambda: _mget_decode(redis, hit_keys), max(50, calls // 10)
            ),
            "get_items 100 misses": _paired(
                lambda: cached.get_items(misses),
                lambda: orders.meta.client.batch_get_item(
                    RequestItems={TABLE: {"Keys": misses, "ConsistentRead": True}}
                ),
                max(20, calls // 50),
                before=lambda: redis.delete(*miss_keys),
            ),
            "reader handler hit": _paired(
                lambda: reader_handler.handler(request(1), None), get_decode, calls
            ),
            "reader handler hit, format dynamodb": _paired(
                lambda: reader_handler.handler(request(1, "dynamodb"), None), get_decode, calls
            ),
        }
        counters = cache.counters.snapshot()
    return {
        "available": True,
        "latency": latency,
        "targets": {name: _target(name, r) for name, r in latency.items()},
        "counters": counters,
        "notes": [
            "DynamoDB is moto in process: misses pay moto's Python on both sides",
            "items are ~1 KB (bench.workload.item); Redis is a local redis-server over loopback TCP",
        ],
    }


def _target(name: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"target": TARGETS[name], "ratio_p50": result["ratio_p50"]}


def _bound(call: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: call(*args)


def _mget_decode(redis: Any, keys: list[str]) -> list[Any]:
    from streamcache import entry

    return [entry.decode(raw).item() for raw in redis.mget(keys)]


def show(result: dict[str, Any]) -> str:
    if not result.get("available"):
        return f"Library: not measured ({result.get('note', '')})"
    rows = [
        [name, r["p50_us"], r["p99_us"], r["baseline_p50_us"], times(r["ratio_p50"]), f"<= {TARGETS[name]}x"]
        for name, r in result["latency"].items()
    ]
    headers = ["library", "p50 us", "p99 us", "base p50", "p50 ratio", "target"]
    return "\n".join([render(headers, rows, "Library vs bare calls (same run)"), *result["notes"]])


def main(argv: list[str] | None = None) -> int:
    return run_alone("python -m bench.library", __doc__, run, show, argv)


if __name__ == "__main__":
    raise SystemExit(main())
