"""Where the time of one 10,000-record batch goes, step by step, and a cProfile summary.

Each step is timed alone on the same batch (median of a few runs), so the
parts are comparable with each other and with the whole ``process`` call.
"""

from __future__ import annotations

import cProfile
import gc
import json
import pstats
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from bench import stats
from bench.rig import TTL_SECONDS, Rig, timed
from bench.throughput import TARGET_SIZE, streamcache_process
from bench.workload import KEY_SCHEMA
from streamcache import entry, lag
from streamcache.batch import plan_batch, records_of
from streamcache.protocol import Scripts, apply_commands
from streamcache.records import command_for, record_key
from streamcache.schema import KeySchemas

PROFILE_ROWS = 15


def run(rig: Rig) -> dict[str, Any]:
    template = rig.workload.records(TARGET_SIZE)
    gc.freeze()
    try:
        result = {"records": TARGET_SIZE, "steps_ms": _steps(rig, template, 2 if rig.quick else 5)}
        result["profile"] = profile(rig, template)
    finally:
        gc.unfreeze()
    return result


def _steps(rig: Rig, template: list[dict[str, Any]], reps: int) -> dict[str, float]:
    schemas = KeySchemas({t: tuple(names) for t, names in KEY_SCHEMA.items()}, None)
    client = rig.client()
    script = Scripts.register(client).apply
    process = streamcache_process(rig)
    document = orjson.dumps(rig.workload.restamp(template))
    images = [r["dynamodb"]["NewImage"] for r in template if "NewImage" in r["dynamodb"]]

    def key_of(r: dict[str, Any]) -> str:
        return record_key(r, schemas, "")

    translate = (key_of, command_for)

    def write() -> None:
        plan = plan_batch(rig.workload.restamp(template)["Records"], *translate)
        apply_commands(client, script, list(plan.commands.values()), TTL_SECONDS)

    write()  # warm-up: script loaded, keys exist
    steps: dict[str, Callable[[], object]] = {
        "event parse: json.loads": lambda: json.loads(document),
        "event parse: orjson.loads": lambda: orjson.loads(document),
        "validate (records_of)": lambda: records_of({"Records": template}),
        "translate (plan_batch)": lambda: plan_batch(template, *translate),
        "  of which keys (record_key)": lambda: [record_key(r, schemas, "") for r in template],
        "  of which encoding (orjson.dumps)": lambda: [entry.encode_item(i) for i in images],
        "  of which versions (pad_version)": lambda: [
            entry.pad_version(r["dynamodb"]["SequenceNumber"]) for r in template
        ],
        "lags (lag.lags_ms)": lambda: lag.lags_ms(template, 0.0),
        "whole process()": lambda: process(rig.workload.restamp(template)),
    }
    result = {name: 1000 * seconds for name, seconds in _round_robin(steps, reps).items()}
    result["Redis (apply_commands, 1 chunk/1000 keys)"] = 1000 * _redis_only(rig, template, translate, reps)
    return result


def _round_robin(steps: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median seconds of each step; the steps take turns so load drift hits all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            seconds[name].append(timed(step))
    return {name: stats.median(values) for name, values in seconds.items()}


def _redis_only(rig: Rig, template: list[dict[str, Any]], translate: Any, reps: int) -> float:
    client = rig.client()
    script = Scripts.register(client).apply
    seconds = []
    for _ in range(reps):
        plan = plan_batch(rig.workload.restamp(template)["Records"], *translate)
        commands = list(plan.commands.values())
        seconds.append(timed(partial(apply_commands, client, script, commands, TTL_SECONDS)))
    return stats.median(seconds)


def profile(rig: Rig, template: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """cProfile of ``Invalidator.process`` on the batch: top functions by cumulative and own time."""
    process = streamcache_process(rig)
    process(rig.workload.restamp(template))
    batch = rig.workload.restamp(template)
    profiler = cProfile.Profile()
    profiler.runcall(process, batch)
    table = pstats.Stats(profiler)
    return {
        "by_cumulative": top_functions(table, "cumulative", PROFILE_ROWS),
        "by_own_time": top_functions(table, "tottime", PROFILE_ROWS),
    }


def top_functions(table: pstats.Stats, order: str, rows: int) -> list[dict[str, Any]]:
    """The ``rows`` heaviest functions as plain data (function, calls, own ms, cumulative ms)."""
    entries = table.stats  # type: ignore[attr-defined]
    index = 3 if order == "cumulative" else 2
    ordered = sorted(entries.items(), key=lambda kv: kv[1][index], reverse=True)[:rows]
    return [
        {
            "function": function_name(func),
            "calls": calls,
            "own_ms": round(own * 1000, 2),
            "cumulative_ms": round(cumulative * 1000, 2),
        }
        for func, (_, calls, own, cumulative, _) in ordered
    ]


def function_name(func: tuple[str, int, str]) -> str:
    """``path:line(name)`` shortened to the package-relative path, as pstats prints it."""
    path, line, name = func
    if path == "~":
        return name
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({name})"
