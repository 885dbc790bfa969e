"""Reader latency and throughput, next to the bare calls it wraps.

- hit: ``reader.handler.handler`` on a cached key vs redis-py GET + ``entry.decode`` + item;
- miss: the handler on an evicted key (GET, lease, GetItem, fill) vs a bare boto3 ``get_item``
  on the same in-process moto table (moto's own cost dominates both);
- throughput of hits with 1, 8 and 32 threads calling the handler at once.

Calls alternate between ours and the baseline so drift hits both alike.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from bench import stats
from bench.coldstart import python
from bench.rig import Rig
from bench.workload import TABLE, item, typed_keys
from streamcache.local.embedded import FAKE_AWS_ENV, patched_environ
from streamcache.local.tables import create_orders_table

THREADS = (1, 8, 32)
KEYS = 50


def env(rig: Rig) -> dict[str, str]:
    return {
        **rig.env(),
        "TABLE_NAME": TABLE,
        "ALLOWED_TABLES": TABLE,
        "POWERTOOLS_SERVICE_NAME": "streamcache-reader",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # The Redis hit path, compared with a Redis GET: the near cache is measured on its own
        # (bench.near, and the "near cache on" throughput below).
        "NEAR_CACHE_ITEMS": "0",
        **FAKE_AWS_ENV,
    }


def run(rig: Rig) -> dict[str, Any]:
    return in_reader_env(rig, _measure)


def in_reader_env(rig: Rig, measure: Callable[[Rig], dict[str, Any]]) -> dict[str, Any]:
    """``measure`` in the reader's environment, or "not available" when moto or the reader is missing."""
    try:
        import moto  # noqa: F401

        import reader.handler  # noqa: F401
    except ImportError as err:
        return {"available": False, "note": f"cannot import {err.name}"}
    with patched_environ(env(rig)):
        return measure(rig)


def create_table(client: Any, keys: int, stream: bool = False) -> dict[str, Any]:
    """The ``orders`` table (pk S, sk N) with ``keys`` items; a NEW_AND_OLD_IMAGES stream if asked."""
    description = create_orders_table(client, stream=stream)
    for index in range(keys):
        client.put_item(TableName=TABLE, Item=item(index, 1))
    return description


def request(index: int, fmt: str = "plain") -> dict[str, Any]:
    keys = typed_keys(index)
    return {"table": TABLE, "key": {"pk": keys["pk"]["S"], "sk": index}, "format": fmt}


def _measure(rig: Rig) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    import reader.handler as module
    from streamcache.aws import client as aws_client
    from streamcache.keys import cache_key

    with mock_aws():
        aws_client.cache_clear()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, KEYS)
        module.reset()
        redis = rig.client()
        redis.flushall()
        calls = 200 if rig.quick else 3000

        def handler(event: dict[str, Any]) -> dict[str, Any]:
            answer: dict[str, Any] = module.handler(event, None)
            return answer

        answer = handler(request(1))
        if answer.get("found") is not True:
            return {"available": False, "note": f"reader answered {answer!r} for an existing item"}
        key = cache_key(TABLE, typed_keys(1), ("pk", "sk"))
        get_decode = partial(_get_decode, redis, key)
        hit = _paired(lambda: handler(request(1)), get_decode, calls)
        hit_typed = _paired(lambda: handler(request(1, "dynamodb")), get_decode, calls)
        hit_bare = _paired(lambda: module.lookup(request(1)), get_decode, calls)
        miss = _paired(
            lambda: handler(request(2)),
            lambda: dynamodb.get_item(TableName=TABLE, Key=typed_keys(2), ConsistentRead=True),
            calls // 3,
            before=lambda: redis.delete(cache_key(TABLE, typed_keys(2), ("pk", "sk"))),
        )
        check = handler(request(2))
        throughput = {str(n): _hits_per_s(handler, n, calls) for n in THREADS}
        with patched_environ({"NEAR_CACHE_ITEMS": "10000"}):
            module.reset()
            handler(request(1))
            near_throughput = {str(n): _hits_per_s(handler, n, calls) for n in THREADS}
        module.reset()
    return {
        "available": True,
        "latency": {
            "hit": hit,
            "hit, format dynamodb": hit_typed,
            "hit, lookup() without Powertools decorators": hit_bare,
            "miss": miss,
        },
        "throughput_hits_per_s": throughput,
        "throughput_hits_per_s_near_cache": near_throughput,
        "init": reader_init(rig),
        "notes": [
            f"miss answers come from {check.get('source')!r} then cache; moto runs in-process, "
            "so a miss's DynamoDB side is moto's Python, not a network round trip",
            "threads share one runtime and the GIL: Lambda runs one call per environment",
        ],
    }


def _get_decode(redis: Any, key: str) -> Any:
    from streamcache import entry

    raw = redis.get(key)
    return entry.decode(raw).item()


def _paired(
    ours: Callable[[], object],
    baseline: Callable[[], object],
    calls: int,
    before: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """Latency percentiles (us) of ``ours`` and ``baseline``, called alternately."""
    mine: list[float] = []
    base: list[float] = []
    for _ in range(calls):
        for call, sink in ((ours, mine), (baseline, base)):
            if before is not None:
                before()
            start = time.perf_counter()
            call()
            sink.append((time.perf_counter() - start) * 1e6)
    result: dict[str, Any] = {
        "calls": calls,
        "p50_us": stats.percentile(mine, 0.5),
        "p99_us": stats.percentile(mine, 0.99),
        "baseline_p50_us": stats.percentile(base, 0.5),
        "baseline_p99_us": stats.percentile(base, 0.99),
    }
    result["ratio_p50"] = stats.ratio(result["p50_us"], result["baseline_p50_us"])
    result["ratio_p99"] = stats.ratio(result["p99_us"], result["baseline_p99_us"])
    return result


def _hits_per_s(handler: Callable[[dict[str, Any]], object], threads: int, calls: int) -> float:
    per_thread = max(1, calls // threads)
    start_gate = threading.Barrier(threads + 1)

    def work() -> None:
        start_gate.wait()
        for n in range(per_thread):
            handler(request(n % 10))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start_gate.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return stats.rate(per_thread * threads, time.perf_counter() - started)


# A fresh interpreter: build the runtime (boto3 is imported here, lazily) before moto is
# loaded, then the first call (DescribeTable + a miss) and a warm call, both on moto.
_INIT_READER = """
import json, sys, time
import reader.handler as h
t0 = time.perf_counter(); h.runtime(); t1 = time.perf_counter()
import boto3
from moto import mock_aws
from bench.reader import create_table, request
from streamcache.aws import client
with mock_aws():
    client.cache_clear(); h.reset()
    create_table(boto3.client("dynamodb"), 3)
    t2 = time.perf_counter(); h.runtime(); t3 = time.perf_counter()
    h.lookup(request(1)); t4 = time.perf_counter()
    h.lookup(request(1)); t5 = time.perf_counter()
sys.stderr.write(json.dumps({"runtime_build_ms": (t1 - t0) * 1000,
    "first_call_ms": (t4 - t3) * 1000, "warm_call_ms": (t5 - t4) * 1000}))
"""


def reader_init(rig: Rig) -> dict[str, Any]:
    try:
        done = python(["-c", _INIT_READER], env=env(rig))
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return dict(json.loads(done.stderr.strip().splitlines()[-1]))
