"""Invalidator throughput on a local 3-master Redis cluster, next to the single node.

Same workload, same code path (``Invalidator.process``); the only difference
is ``REDIS_CLUSTER=true``: one pipeline per master per chunk instead of one,
each on its master's own connection, all written before any reply is read,
so a chunk waits for the slowest master, not for the sum. Every server runs
on this machine (and shares its cores with the client): a real cluster's
masters work on their own CPUs.
"""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.rig import Rig
from bench.throughput import interleaved, reps_for
from streamcache.local.redis_cluster import running_cluster
from streamcache.settings import Settings

SIZES = (100, 1000, 10000)
SINGLE, CLUSTER = "single node", "3-master cluster"


def _process(env: dict[str, str]) -> Any:
    from invalidator.handler import build

    return build(Settings.from_env(env)).process


def run(rig: Rig) -> dict[str, Any]:
    with running_cluster() as cluster:
        runners = {
            SINGLE: _process({**rig.env(), "CACHE_KEY_PREFIX": "single:"}),
            CLUSTER: _process({**rig.env(), "REDIS_URL": cluster.url, "REDIS_CLUSTER": "true"}),
        }
        templates = {size: rig.workload.records(size) for size in SIZES}
        for runner in runners.values():
            runner(rig.workload.restamp(templates[1000]))  # warm-up: slots, scripts, keys
        series: dict[str, dict[str, float]] = {name: {} for name in runners}
        for size in SIZES:
            medians = interleaved(rig, runners, templates[size], reps_for(size, rig.quick))
            for name, seconds in medians.items():
                series[name][str(size)] = stats.rate(size, seconds)
    top = str(SIZES[-1])
    return {
        "sizes": list(SIZES),
        "records_per_s": series,
        "cluster_over_single_at_10000": series[CLUSTER][top] / series[SINGLE][top],
        "cluster_over_single": {str(n): series[CLUSTER][str(n)] / series[SINGLE][str(n)] for n in SIZES},
    }
