"""Invalidator throughput (records/s) by batch size, next to baselines on the same data.

Contenders, each fed the same batches:

- ``streamcache``: ``invalidator.processor.Invalidator.process`` (plan, Lua, pipelined);
- ``handler``: the same through ``invalidator.handler.handler`` (Powertools logs/metrics);
- ``per-record loop``: the seed blog's loop, one SET json(NewImage) / DEL per record;
- ``bare pipelined SET``: SET orjson(NewImage) / DEL per record, pipelined, unversioned:
  the client-side limit of the protocol (no dedup, no Lua, no checks).

Plus ``redis-benchmark -P 1000 -t set -d 1000``: what the server takes from a C client.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import orjson

from bench import stats
from bench.rig import TTL_SECONDS, Rig, timed
from streamcache.protocol import CHUNK_SIZE

SIZES = (1, 10, 100, 1000, 10000)
TARGET_SIZE = 10000
OURS, HANDLER, LOOP, BARE = "streamcache", "handler (Powertools)", "per-record loop", "bare pipelined SET"

Batch = dict[str, Any]
Runner = Callable[[Batch], object]


def seed_key(record: dict[str, Any]) -> str:
    """The seed's key: table name, then the Keys values in the record's order, joined by '-'."""
    table = record["eventSourceARN"].split(":", 5)[5].split("/")[1]
    values = [next(iter(typed.values())) for typed in record["dynamodb"]["Keys"].values()]
    return "-".join([table, *values])


def per_record_loop(client: Any) -> Runner:
    def run(batch: Batch) -> None:
        for record in batch["Records"]:
            if record["eventName"] == "REMOVE":
                client.delete(seed_key(record))
            else:
                image = json.dumps(record["dynamodb"]["NewImage"])
                client.set(seed_key(record), image, ex=TTL_SECONDS)

    return run


def bare_pipelined_set(client: Any) -> Runner:
    def run(batch: Batch) -> None:
        records = batch["Records"]
        for start in range(0, len(records), CHUNK_SIZE):
            pipe = client.pipeline(transaction=False)
            for record in records[start : start + CHUNK_SIZE]:
                if record["eventName"] == "REMOVE":
                    pipe.delete(seed_key(record))
                else:
                    image = orjson.dumps(record["dynamodb"]["NewImage"])
                    pipe.set(seed_key(record), image, ex=TTL_SECONDS)
            pipe.execute()

    return run


def streamcache_process(rig: Rig) -> Runner:
    from invalidator.handler import build
    from streamcache.settings import Settings

    invalidator = build(Settings.from_env(rig.env()))
    return invalidator.process


def powertools_handler(rig: Rig) -> Runner:
    import invalidator.handler as module

    os.environ.update(rig.env())
    module.reset()

    def run(batch: Batch) -> None:
        module.handler(batch, None)  # its stdout (logs, EMF metrics) is silenced by the caller

    return run


def contenders(rig: Rig) -> dict[str, Runner]:
    return {
        OURS: streamcache_process(rig),
        HANDLER: powertools_handler(rig),
        LOOP: per_record_loop(rig.client()),
        BARE: bare_pipelined_set(rig.client()),
    }


def reps_for(size: int, quick: bool) -> int:
    return stats.repetitions(size, 2000, 1, 20) if quick else stats.repetitions(size, 40000, 3, 300)


def measure(rig: Rig, run: Runner, template: list[dict[str, Any]], reps: int) -> float:
    """Median seconds per batch over ``reps`` runs, each on freshly stamped sequence numbers."""
    seconds = [timed(lambda: run(rig.workload.restamp(template))) for _ in range(reps)]
    return stats.median(seconds)


def run(rig: Rig) -> dict[str, Any]:
    runners = contenders(rig)
    templates = {size: rig.workload.records(size) for size in SIZES}
    gc.freeze()  # the templates live all run: keep them out of every timed collection
    series: dict[str, dict[str, float]] = {name: {} for name in runners}
    for name, runner in runners.items():
        rig.flush()
        runner(rig.workload.restamp(templates[1000]))  # warm-up: connection, script load, keys exist
        for size in SIZES:
            series[name][str(size)] = size / measure(rig, runner, templates[size], reps_for(size, rig.quick))
    distinct = _distinct_keys(rig, runners)
    gc.unfreeze()
    return {
        "sizes": list(SIZES),
        "records_per_s": series,
        "distinct_keys_10000": distinct,
        "redis_benchmark": redis_benchmark(rig.port, 20000 if rig.quick else 100000),
        "ratios_at_10000": _ratios(series),
    }


def _distinct_keys(rig: Rig, runners: dict[str, Runner]) -> dict[str, float]:
    """10,000 records on 10,000 keys: deduplication cannot help, the protocol's cost shows."""
    template = rig.workload.records(TARGET_SIZE, distinct=True)
    gc.freeze()
    reps = 1 if rig.quick else 3
    result = {}
    for name in (OURS, BARE):
        rig.flush()
        runners[name](rig.workload.restamp(template))
        result[name] = TARGET_SIZE / measure(rig, runners[name], template, reps)
    return result


def _ratios(series: dict[str, dict[str, float]]) -> dict[str, float | None]:
    ours = series[OURS].get(str(TARGET_SIZE))
    return {
        "streamcache / per-record loop": stats.ratio(ours, series[LOOP].get(str(TARGET_SIZE))),
        "streamcache / bare pipelined SET": stats.ratio(ours, series[BARE].get(str(TARGET_SIZE))),
        "handler / streamcache": stats.ratio(series[HANDLER].get(str(TARGET_SIZE)), ours),
    }


_RPS = re.compile(r"SET: ([0-9.]+) requests per second")


def parse_redis_benchmark(output: str) -> float | None:
    """Requests/s from ``redis-benchmark -q`` output (the last SET figure), None if absent."""
    found = _RPS.findall(output.replace("\r", "\n"))
    return float(found[-1]) if found else None


def redis_benchmark(port: int, requests: int) -> dict[str, Any]:
    binary = shutil.which("redis-benchmark")
    command = ["-h", "127.0.0.1", "-p", str(port), "-P", "1000", "-t", "set", "-n", str(requests)]
    command += ["-d", "1000", "-q"]
    if binary is None:
        return {"available": False, "note": "redis-benchmark is not installed"}
    done = subprocess.run([binary, *command], capture_output=True, text=True, timeout=120, check=False)
    return {
        "available": True,
        "command": "redis-benchmark " + " ".join(command),
        "requests_per_s": parse_redis_benchmark(done.stdout),
    }
