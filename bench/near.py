"""The near cache: a hit from process memory vs a Redis GET, and the staleness it adds.

- hit: ``NearCache.get`` + ``entry.decode`` + item vs redis-py GET + the same decode
  (target: p50 at most 0.2x);
- staleness added: a writer changes a key every few ms while a reader keeps
  reading it through the near cache; for each write, how long after Redis
  acknowledged it the near cache still served the previous value (the promise
  bounds it by ``NEAR_CACHE_MAX_STALENESS_MS`` plus a hop).
"""

from __future__ import annotations

from typing import Any

import redis

from bench import stats
from bench.reader import _get_decode, _paired
from bench.rig import Rig
from streamcache import entry
from streamcache.local.nearlag import near_staleness_ms
from streamcache.read.lookup import ReaderCache
from streamcache.read.near import NearCache, SingleNode

KEY = "orders-near-1"
BOUND_S = 0.1


def run(rig: Rig) -> dict[str, Any]:
    client = redis.Redis.from_url(rig.redis_url)
    client.set(
        KEY, entry.ITEM + b"0" * 40 + b'{"pk":{"S":"near"},"sk":{"N":"1"},"v":{"S":"' + b"x" * 200 + b'"}}'
    )
    near = NearCache(SingleNode(client), max_staleness_s=BOUND_S)
    ReaderCache(client, near=near).get(KEY)  # kept in the near cache
    calls = 300 if rig.quick else 5000
    hit = _paired(lambda: _near_decode(near), lambda: _get_decode(client, KEY), calls)
    near.close()
    staleness = _staleness(rig, writes=20 if rig.quick else 200)
    client.close()
    return {"hit": hit, "staleness_added_ms": staleness, "bound_ms": BOUND_S * 1000}


def _near_decode(near: NearCache) -> Any:
    raw = near.get(KEY)
    assert raw is not None, "the near cache lost its entry during the benchmark"
    return entry.decode(raw).item()


def _staleness(rig: Rig, writes: int) -> dict[str, Any]:
    delays = near_staleness_ms(rig.redis_url, writes, BOUND_S)
    assert delays is not None, "the benchmark's redis-server refused client tracking"
    return {
        "writes": writes,
        "p50": stats.percentile(delays, 0.5),
        "p99": stats.percentile(delays, 0.99),
        "max": max(delays),
    }


def show(result: dict[str, Any]) -> str:
    hit, stale = result["hit"], result["staleness_added_ms"]
    return "\n".join(
        [
            f"near-cache hit p50 {hit['p50_us']:.1f} us vs Redis GET+decode {hit['baseline_p50_us']:.1f} us"
            f" = {hit['ratio_p50']:.2f}x (target <= 0.2x); p99 {hit['p99_us']:.1f} vs"
            f" {hit['baseline_p99_us']:.1f} us",
            f"staleness added over Redis ({stale['writes']} writes, bound {result['bound_ms']:.0f} ms):"
            f" p50 {stale['p50']:.2f} ms, p99 {stale['p99']:.2f} ms, max {stale['max']:.2f} ms",
        ]
    )
