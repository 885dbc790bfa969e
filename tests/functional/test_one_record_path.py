"""One-record batches take a shorter path (one round trip, no batch machinery) and end as the general one.

Each case runs the same one-record events through two invalidators on the same
Redis under different key prefixes: one with the one-record path, one made to
take the general path. Their batch results and the cache entries they leave
must be identical; the unusual cases must reach the general path's recovery.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import invalidator.handler as invalidator_handler
from invalidator import processor
from invalidator.handler import build
from invalidator.processor import BatchResult, Invalidator
from streamcache import logs, node_pipeline
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.layouts import Layouts
from streamcache.local import events
from streamcache.local.inspect import holding
from streamcache.local.redis_server import RedisServer
from streamcache.ops import sampling
from streamcache.ops.checker import Checker
from streamcache.ops.sampling import Sampler, SamplingConfig
from streamcache.protocol import lua_source
from streamcache.schema import KeySchemas
from streamcache.settings import Settings
from tests.functional.conftest import KEY_SCHEMA

SEQ = events.FIRST_SEQUENCE
NOW = 1_800_000_000.0
ORDERS_KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


def invalidator(url: str, prefix: str, one_record: bool = True, **env: str) -> Invalidator:
    settings = {"REDIS_URL": url, "KEY_SCHEMA": KEY_SCHEMA, "CACHE_TTL_SECONDS": "600", **env}
    made = build(Settings.from_env({**settings, "CACHE_KEY_PREFIX": prefix}))
    made._clock = lambda: NOW  # the same stream lag both ways
    if not one_record:
        made._one_record_path = False  # the general path, for comparison
    return made


def record(event: str, pk: str, seq: int, value: str = "v", **kw: Any) -> dict[str, Any]:
    keys = {"pk": {"S": pk}, "sk": {"N": "1"}}
    image = events.item(keys, value={"S": value})
    kw.setdefault("created", NOW - 2)
    return events.record(
        "orders", event, keys, seq, new=None if event == "REMOVE" else image, old=image, **kw
    )


def fields(result: BatchResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in BatchResult.__dataclass_fields__}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many commands each ``apply_commands`` call (the general path's write) was given."""
    seen: list[int] = []
    general = processor.apply_commands

    def counted(client: Any, script: Any, commands: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(len(commands))
        return general(client, script, commands, *args, **kwargs)

    monkeypatch.setattr(processor, "apply_commands", counted)
    return seen


def fill_entry(fill_ms: int) -> bytes:
    """A reader fill of version 0 stamped ``fill_ms``: a record created before it only invalidates."""
    return b"F" + b"0" * 40 + str(fill_ms).encode() + b'{"pk": {"S": "f"}}'


def changed(one: dict[str, Any], **dynamodb: Any) -> dict[str, Any]:
    """``one`` with its ``dynamodb`` fields replaced (``None``: removed)."""
    fields = {k: v for k, v in {**one["dynamodb"], **dynamodb}.items() if v is not None}
    return {**one, "dynamodb": fields}


KEYS_ONLY = events.record("orders", "MODIFY", {"pk": {"S": "k"}, "sk": {"N": "1"}}, SEQ, view="KEYS_ONLY")
ONE_RECORD_EVENTS = {
    "insert": [record("INSERT", "a", SEQ)],
    "modify, then a newer modify": [record("INSERT", "a", SEQ), record("MODIFY", "a", SEQ + 5, "w")],
    "the same record twice": [record("INSERT", "a", SEQ), record("INSERT", "a", SEQ)],
    "an older record after a newer": [record("MODIFY", "a", SEQ + 9), record("MODIFY", "a", SEQ + 1)],
    "remove": [record("INSERT", "a", SEQ), record("REMOVE", "a", SEQ + 1)],
    "TTL expiry": [record("REMOVE", "a", SEQ, ttl_expiry=True)],
    "keys only": [KEYS_ONLY],
    "malformed image": [changed(record("INSERT", "m", SEQ), NewImage="not a map")],
    "no creation time": [changed(record("INSERT", "t", SEQ), ApproximateCreationDateTime=None)],
    "no Keys": [changed(record("INSERT", "n", SEQ), Keys=None)],
    "unknown table": [events.record("ghosts", "INSERT", {"id": {"S": "g"}}, SEQ, new={"id": {"S": "g"}})],
}


FALLS_BACK = {"no Keys"}  # no usable key: reported by the general path


@pytest.mark.parametrize("name", ONE_RECORD_EVENTS)
def test_one_record_batches_end_as_the_general_path(name: str, redis_url: str, calls: list[int]) -> None:
    fast, general = invalidator(redis_url, "fast:"), invalidator(redis_url, "general:", one_record=False)
    cache = redis.Redis.from_url(redis_url)
    cache.script_load(lua_source("apply"))  # else the first write meets NOSCRIPT: the general path's case
    for one in ONE_RECORD_EVENTS[name]:
        calls.clear()
        ours = fast.process(events.event([one]))
        assert (calls == []) == (name not in FALLS_BACK)  # the one-record path answered alone
        assert fields(ours) == fields(general.process(events.event([one])))
        assert calls  # the general invalidator wrote through apply_commands
    for key in cache.scan_iter("fast:*"):
        mirror = "general:" + key.decode().removeprefix("fast:")
        ours, theirs = holding(cache, key.decode()), holding(cache, mirror)
        assert {**ours, "key": None, "ttl": None} == {**theirs, "key": None, "ttl": None}
        assert abs(ours["ttl"] - theirs["ttl"]) <= 1  # the same expiry


@pytest.mark.parametrize(
    "fill_after_ms, counted",
    [(12_000, "invalidated"), (-8_000, "applied")],  # the fill read after / well before the record's write
)
def test_a_key_in_fill_mode_ends_the_same_way(fill_after_ms: int, counted: str, redis_url: str) -> None:
    fast, general = invalidator(redis_url, "fast:"), invalidator(redis_url, "general:", one_record=False)
    cache = redis.Redis.from_url(redis_url)
    cache.script_load(lua_source("apply"))
    created_ms = int((NOW - 2) * 1000)
    for prefix in ("fast:", "general:"):
        cache.set(f"{prefix}orders-f-1", fill_entry(created_ms + fill_after_ms))
    one = events.event([record("MODIFY", "f", SEQ)])
    ours, theirs = fast.process(one), general.process(one)
    assert fields(ours) == fields(theirs) and ours.counts[counted] == 1
    assert holding(cache, "fast:orders-f-1")["state"] == holding(cache, "general:orders-f-1")["state"]


def test_an_applied_record_takes_one_round_trip_and_no_batch_write(redis_url: str, calls: list[int]) -> None:
    fast = invalidator(redis_url, "fast:")
    fast.process(events.event([record("INSERT", "warm", SEQ)]))  # the script is loaded
    calls.clear()
    cache = redis.Redis.from_url(redis_url)
    before = cache.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    result = fast.process(events.event([record("INSERT", "a", SEQ + 1)]))
    assert result.response == {"batchItemFailures": []} and result.counts["applied"] == 1
    assert cache.info("commandstats")["cmdstat_evalsha"]["calls"] == before + 1
    assert calls == [] and holding(cache, "fast:orders-a-1")["state"] == "item"


def test_noscript_and_refused_writes_reach_the_general_paths_recovery(
    redis_url: str, calls: list[int]
) -> None:
    fast = invalidator(redis_url, "fast:")
    cache = redis.Redis.from_url(redis_url)
    cache.script_flush()
    assert (
        fast.process(events.event([record("INSERT", "a", SEQ)])).counts["applied"] == 1
    )  # loaded, sent again
    assert calls == [1]
    cache.rpush("fast:orders-l-1", "not a cache entry")  # GETRANGE on a list: WRONGTYPE, a refused write
    refused = fast.process(events.event([record("INSERT", "l", SEQ)]))
    assert calls == [1, 1, 1]  # the write, then its fail-safe invalidation
    assert refused.counts["failed"] == 1 and refused.redis_error == "ResponseError"
    assert refused.response == {"batchItemFailures": [{"itemIdentifier": str(SEQ)}]}


@pytest.fixture
def stopped_redis(own_redis: RedisServer) -> Iterator[str]:
    url = own_redis.url
    own_redis.stop()
    yield url


def test_an_unreachable_redis_reports_the_record_without_a_second_attempt(
    stopped_redis: str, calls: list[int]
) -> None:
    fast = invalidator(stopped_redis, "fast:")
    start = time.monotonic()
    result = fast.process(events.event([record("INSERT", "a", SEQ)]))
    assert result.response == {"batchItemFailures": [{"itemIdentifier": str(SEQ)}]}
    assert result.redis_error == "ConnectionError" and result.counts["failed"] == 1
    assert calls == []  # answered as apply_commands would, not by running it again
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    "env, records",
    [
        (
            {"REDIS_MIN_REPLICA_ACKS": "1", "REDIS_REPLICA_ACK_TIMEOUT_MS": "10"},
            1,
        ),  # WAIT goes with the write
        ({}, 2),
    ],
)
def test_the_general_path_where_the_one_record_path_does_not_apply(
    env: dict[str, str], records: int, redis_url: str, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor, "apply_one", lambda *a, **k: pytest.fail("one-record path taken"))
    batch = [record("INSERT", f"r{i}", SEQ + i) for i in range(records)]
    invalidator(redis_url, "fast:", **env).process(events.event(batch))
    assert calls == [records]


def test_a_query_cache_takes_the_general_path(
    redis_url: str, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor, "apply_one", lambda *a, **k: pytest.fail("one-record path taken"))
    settings = Settings.from_env({"REDIS_URL": redis_url, "QUERY_CACHE_TABLES": "orders"})
    client = redis_client(settings, INVALIDATOR_TIMEOUTS)
    layouts = Layouts(settings.query_cache_tables, lambda table: {"KeySchema": ORDERS_KEY_SCHEMA})
    made = Invalidator(settings, client, KeySchemas({"orders": ("pk", "sk")}, None), layouts=layouts)
    result = made.process(events.event([record("INSERT", "q", SEQ)]))
    assert result.counts["applied"] == 1 and calls == [2]  # the item and its partition marker


def test_a_cluster_takes_the_general_path(
    cluster_url: str, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor, "apply_one", lambda *a, **k: pytest.fail("one-record path taken"))
    made = invalidator(cluster_url, "fast:", REDIS_CLUSTER="true")
    assert made.process(events.event([record("INSERT", "c", SEQ)])).counts["applied"] == 1 and calls == [1]


def test_a_one_record_batch_offers_its_sample_to_the_checker(redis_url: str) -> None:
    cache = redis.Redis.from_url(redis_url)
    config = SamplingConfig(rate=1.0, key_prefix="fast:")
    Checker(cache, config).arm()
    sampling.configure(Sampler(config))
    fast = invalidator(redis_url, "fast:")
    fast.process(events.event([record("INSERT", "warm", SEQ)]))  # the script is loaded
    try:
        fast.process(events.event([record("INSERT", "s", SEQ)]))
    finally:
        sampling.configure(None)
    samples = [m for m in cache.zrange(config.samples_key, 0, -1) if b"orders-s-1" in m]
    assert len(samples) == 1


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each write of commands to Redis and each reading of their replies, in order."""
    seen: list[str] = []
    write, read = node_pipeline._write, node_pipeline._read
    monkeypatch.setattr(node_pipeline, "_write", lambda *a: seen.append("write") or write(*a))
    monkeypatch.setattr(node_pipeline, "_read", lambda *a: seen.append("read") or read(*a))
    return seen


def test_the_callers_work_runs_while_redis_runs_a_one_record_write(redis_url: str, steps: list[str]) -> None:
    fast = invalidator(redis_url, "fast:")
    fast.process(events.event([record("INSERT", "warm", SEQ)]))  # the script is loaded
    steps.clear()
    fast.process(events.event([record("INSERT", "a", SEQ + 1)]), meanwhile=lambda: steps.append("meanwhile"))
    assert steps == ["write", "meanwhile", "read"]
    steps.clear()
    two = [record("INSERT", "b", SEQ + 2), record("INSERT", "c", SEQ + 3)]
    assert fast.process(events.event(two), meanwhile=lambda: steps.append("meanwhile")).counts["applied"] == 2
    assert (
        "meanwhile" not in steps and steps.count("write") == 1
    )  # the general path: the caller does it after


def test_a_quiet_streams_log_line_is_written_out_before_the_reply_is_read(
    invoke: Any, steps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In Lambda the root logger's handler drops Powertools' records; here pytest's capture would not.
    logger = invalidator_handler.logger
    monkeypatch.setattr(logging.getLogger(logger.name), "propagate", False)
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    line = logs._line
    monkeypatch.setattr(logs, "_line", lambda *a: steps.append("line") or line(*a))
    invoke(events.event([record("INSERT", "warm", SEQ)]))  # the first line: no earlier one to go by
    steps.clear()
    assert invoke(events.event([record("INSERT", "a", SEQ + 1)])) == {"batchItemFailures": []}
    assert steps == ["write", "line", "read"]  # made while Redis ran the write, and not again after
    first, second = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert second["message"] == "batch applied" and second["records"] == second["applied"] == 1
    assert second["location"] == first["location"] and second["location"].startswith("_publish:")
    assert second["timestamp"] >= first["timestamp"]
    steps.clear()
    assert invoke(events.event([record("MODIFY", "a", SEQ)]))["batchItemFailures"] == []  # older: skipped
    assert steps == ["write", "line", "read", "line"]  # guessed wrong: made again with the real counts
    third = json.loads(stream.getvalue().splitlines()[2])
    assert third["skipped_older"] == 1 and third["applied"] == 0
