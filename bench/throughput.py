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
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench import stats
from bench.rig import TTL_SECONDS, Rig, timed
from streamcache.logs import InfoLine
from streamcache.protocol import CHUNK_SIZE

SIZES = (1, 10, 100, 1000, 10000)
LATENCY_SIZES = (1, 10, 100)  # small batches: what most invocations carry, and what Lambda bills
TARGET_SIZE = 10000
OURS, HANDLER, LOOP, BARE = "streamcache", "handler (Powertools)", "per-record loop", "bare pipelined SET"
PING = "PING (one round trip)"  # timed in the same rotation at the latency sizes: one round trip there

Batch = dict[str, Any]
Runner = Callable[[Batch], object]


# Each contender writes under its own key prefix, so their runs can be interleaved.
PREFIXES = {OURS: "sc:", HANDLER: "h:", LOOP: "loop:", BARE: "bare:"}


def seed_key(record: dict[str, Any], prefix: str = "") -> str:
    """The seed's key: table name, then the Keys values in the record's order, joined by '-'."""
    table = record["eventSourceARN"].split(":", 5)[5].split("/")[1]
    values = [next(iter(typed.values())) for typed in record["dynamodb"]["Keys"].values()]
    return prefix + "-".join([table, *values])


def per_record_loop(client: Any, prefix: str = "") -> Runner:
    def run(batch: Batch) -> None:
        for record in batch["Records"]:
            if record["eventName"] == "REMOVE":
                client.delete(seed_key(record, prefix))
            else:
                image = json.dumps(record["dynamodb"]["NewImage"])
                client.set(seed_key(record, prefix), image, ex=TTL_SECONDS)

    return run


def bare_pipelined_set(client: Any, prefix: str = "") -> Runner:
    def run(batch: Batch) -> None:
        records = batch["Records"]
        for start in range(0, len(records), CHUNK_SIZE):
            pipe = client.pipeline(transaction=False)
            for record in records[start : start + CHUNK_SIZE]:
                if record["eventName"] == "REMOVE":
                    pipe.delete(seed_key(record, prefix))
                else:
                    image = orjson.dumps(record["dynamodb"]["NewImage"])
                    pipe.set(seed_key(record, prefix), image, ex=TTL_SECONDS)
            pipe.execute()

    return run


def streamcache_process(rig: Rig, prefix: str = "") -> Runner:
    from invalidator.handler import build
    from streamcache.settings import Settings

    invalidator = build(Settings.from_env({**rig.env(), "CACHE_KEY_PREFIX": prefix}))
    return invalidator.process


def powertools_handler(rig: Rig, prefix: str = "") -> Runner:
    import invalidator.handler as module

    os.environ.update({**rig.env(), "CACHE_KEY_PREFIX": prefix})
    module.reset()

    def run(batch: Batch) -> None:
        module.handler(batch, None)  # its stdout (logs, EMF metrics) is silenced by the caller

    return run


def contenders(rig: Rig) -> dict[str, Runner]:
    return {
        OURS: streamcache_process(rig, PREFIXES[OURS]),
        HANDLER: powertools_handler(rig, PREFIXES[HANDLER]),
        LOOP: per_record_loop(rig.client(), PREFIXES[LOOP]),
        BARE: bare_pipelined_set(rig.client(), PREFIXES[BARE]),
    }


def reps_for(size: int, quick: bool) -> int:
    """Runs per contender: about 40,000 records' worth (2,000 quick), 3..2,000 runs (1..200 quick).

    Small batches get many runs, so their p99 rests on a few hundred invocations.
    """
    return stats.repetitions(size, 2000, 1, 200) if quick else stats.repetitions(size, 40000, 3, 2000)


def interleaved(
    rig: Rig, runners: dict[str, Runner], template: list[dict[str, Any]], reps: int
) -> dict[str, float]:
    """Median seconds per batch for each runner (see ``samples``)."""
    return {name: stats.median(values) for name, values in samples(rig, runners, template, reps).items()}


def samples(
    rig: Rig, runners: dict[str, Runner], template: list[dict[str, Any]], reps: int
) -> dict[str, list[float]]:
    """Seconds per batch, every run, for each runner; the runners take turns, so load drift hits all alike.

    Every run gets the same records with freshly stamped (higher) sequence numbers.
    """
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(reps):
        for name, runner in runners.items():
            batch = rig.workload.restamp(template)
            seconds[name].append(timed(lambda: runner(batch)))  # noqa: B023 (called at once)
    return seconds


def latency_us(seconds: list[float]) -> dict[str, float]:
    """End-to-end p50 / p99 of one invocation, in microseconds."""
    return {"p50": stats.percentile(seconds, 0.5) * 1e6, "p99": stats.percentile(seconds, 0.99) * 1e6}


def run(rig: Rig) -> dict[str, Any]:
    runners = contenders(rig)
    templates = {size: rig.workload.records(size) for size in SIZES}
    gc.freeze()  # the templates live all run: keep them out of every timed collection
    rig.flush()
    for runner in runners.values():
        runner(rig.workload.restamp(templates[1000]))  # warm-up: connection, script load, keys exist
    series: dict[str, dict[str, float]] = {name: {} for name in runners}
    latency: dict[str, dict[str, dict[str, float]]] = {}
    ping = rig.client()
    with_ping = {**runners, PING: lambda _batch: ping.ping()}
    for size in SIZES:
        rotation = with_ping if size in LATENCY_SIZES else runners
        runs = samples(rig, rotation, templates[size], reps_for(size, rig.quick))
        for name in runners:
            series[name][str(size)] = stats.rate(size, stats.median(runs[name]))
        if size in LATENCY_SIZES:
            latency[str(size)] = {name: latency_us(seconds) for name, seconds in runs.items()}
    log_line = log_line_us(reps_for(1, rig.quick))
    distinct = _distinct_keys(rig, runners)
    spread = rig.workload.records(TARGET_SIZE, distinct=True)
    server_us = {name: server_us_per_call(rig, runners[name], spread) for name in (OURS, BARE)}
    gc.unfreeze()
    return {
        "sizes": list(SIZES),
        "records_per_s": series,
        "latency_us": latency,
        "log_line_us": log_line,
        "distinct_keys_10000": distinct,
        "server_us_per_call_10000_distinct": server_us,
        "redis_benchmark": redis_benchmark(rig.port, 20000 if rig.quick else 100000),
        "ping_round_trip_us": ping_round_trip_us(rig.client(), 200),
        "ratios_at_10000": _ratios(series),
        "ratios_by_size": ratios_by_size(series),
    }


def log_line_us(reps: int) -> dict[str, dict[str, float]]:
    """The handler's per-batch INFO line, p50 / p99 us, three ways taking turns, each after a collection.

    Powertools' ``logger.info``; ``logs.InfoLine``; and a ``PendingLine``
    prepared beforehand, like the last line: what is left to do once Redis
    answers a one-record batch (the preparation, hidden in that round trip,
    is not timed). The same line and fields each way (stdout is silenced by
    the caller).
    """
    import invalidator.handler as module

    fields = dict.fromkeys(module._SUMMARY, 1)
    ahead = InfoLine(module.logger)  # its own last line to go by

    def prepared() -> Callable[[], object]:
        line = ahead.pending("batch applied")
        line.prepare()
        return lambda: line(fields)

    writers: dict[str, Callable[[], Callable[[], object]]] = {
        "logger.info": lambda: lambda: module.logger.info("batch applied", extra=fields),
        "InfoLine": lambda: lambda: module.batch_applied("batch applied", fields),
        "PendingLine, prepared": prepared,
    }
    seconds: dict[str, list[float]] = {name: [] for name in writers}
    for _ in range(reps):
        for name, make in writers.items():
            seconds[name].append(timed(make()))
    return {name: latency_us(values) for name, values in seconds.items()}


def ratios_by_size(series: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Per batch size: the handler and ``process`` against the per-record loop (throughput ratios)."""
    loop = series[LOOP]
    return {
        str(size): {
            "handler / per-record loop": stats.ratio(series[HANDLER].get(str(size)), loop.get(str(size))),
            "streamcache / per-record loop": stats.ratio(series[OURS].get(str(size)), loop.get(str(size))),
        }
        for size in SIZES
    }


def ping_round_trip_us(client: Any, count: int) -> dict[str, float]:
    """PING latency through redis-py: what one round trip of the per-record loop costs at least."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        client.ping()
        samples.append((time.perf_counter() - start) * 1e6)
    return {"p50": stats.percentile(samples, 0.5), "p99": stats.percentile(samples, 0.99)}


def _distinct_keys(rig: Rig, runners: dict[str, Runner]) -> dict[str, float]:
    """10,000 records on 10,000 keys: deduplication cannot help, the protocol's cost shows."""
    template = rig.workload.records(TARGET_SIZE, distinct=True)
    gc.freeze()
    pair = {name: runners[name] for name in (OURS, BARE)}
    for runner in pair.values():
        runner(rig.workload.restamp(template))  # the 10,000 keys exist, as in a steady state
    medians = interleaved(rig, pair, template, 1 if rig.quick else 3)
    return {name: stats.rate(TARGET_SIZE, seconds) for name, seconds in medians.items()}


def server_us_per_call(rig: Rig, runner: Runner, template: list[dict[str, Any]]) -> dict[str, float]:
    """Redis's own time per command (INFO commandstats) while ``runner`` applies ``template`` once."""
    client = rig.client()
    client.config_resetstat()
    runner(rig.workload.restamp(template))
    found = client.info("commandstats")
    return {
        name[len("cmdstat_") :]: float(s["usec_per_call"])
        for name, s in found.items()
        if s.get("calls", 0) >= 100
    }  # the measured commands, not the bookkeeping


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
