"""The invalidator handler against a real redis-server (docs/invalidator.md, docs/consistency.md)."""

from __future__ import annotations

import io
import json
import logging
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import redis

import invalidator.handler as invalidator_handler
from streamcache import protocol, routing
from streamcache.errors import MalformedEventError
from streamcache.local import events
from streamcache.local.inspect import holding
from streamcache.local.redis_server import RedisServer

if TYPE_CHECKING:
    from tests.conftest import RedisTarget

SEQ = events.FIRST_SEQUENCE


# Every test using `invoke` / `cache` runs against a single node and a 3-master cluster
# (issue 8): these extend tests/functional/conftest.py's fixtures for this module only.
@pytest.fixture
def invalidator_env(
    invalidator_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, any_redis: RedisTarget
) -> dict[str, str]:
    for name, value in any_redis.env.items():
        monkeypatch.setenv(name, value)
    return {**invalidator_env, **any_redis.env}


@pytest.fixture
def cache(any_redis: RedisTarget) -> Iterator[Any]:
    client = any_redis.client()
    yield client
    client.close()


def keys_of(pk: str, sk: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def write(event: str, pk: str, sk: int, seq: int, value: str = "v", **kw: Any) -> dict[str, Any]:
    keys = keys_of(pk, sk)
    image = events.item(keys, value={"S": value})
    new = image if event != "REMOVE" else None
    return events.record("orders", event, keys, seq, new=new, old=image, **kw)


def state(cache: redis.Redis, key: str) -> tuple[str, Any]:
    held = holding(cache, key)
    value = held["item"]["value"]["S"] if held["item"] else None
    return held["state"], value


def failures(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def test_insert_modify_remove_in_one_batch(invoke, cache) -> None:
    batch = [
        write("INSERT", "a", 1, SEQ, "first"),
        write("INSERT", "b", 2, SEQ + 1, "bee"),
        write("MODIFY", "a", 1, SEQ + 2, "second"),
        write("REMOVE", "b", 2, SEQ + 3),
    ]
    assert invoke(events.event(batch)) == {"batchItemFailures": []}
    assert state(cache, "orders-a-1") == ("item", "second")
    assert state(cache, "orders-b-2") == ("not found (tombstone)", None)
    assert 590 < cache.ttl("orders-a-1") <= 600


@pytest.mark.parametrize("view", ["KEYS_ONLY", "OLD_IMAGE"])
def test_write_without_new_image_invalidates(invoke, cache, view: str) -> None:
    invoke(events.event([write("INSERT", "a", 1, SEQ, "v1")]))
    invoke(events.event([write("MODIFY", "a", 1, SEQ + 1, "v2", view=view)]))
    assert state(cache, "orders-a-1") == ("invalidated", None)


def test_ttl_expiry_leaves_not_found(invoke, cache) -> None:
    invoke(events.event([write("INSERT", "a", 1, SEQ), write("REMOVE", "a", 1, SEQ + 1, ttl_expiry=True)]))
    assert state(cache, "orders-a-1")[0] == "not found (tombstone)"


def test_older_record_never_overwrites_newer(invoke, cache) -> None:
    old, new = write("MODIFY", "a", 1, SEQ, "old"), write("MODIFY", "a", 1, SEQ + 1, "new")
    invoke(events.event([new]))
    response = invoke(events.event([old]))
    assert response == {"batchItemFailures": []}
    assert state(cache, "orders-a-1") == ("item", "new")


def test_redelivered_insert_cannot_resurrect_a_removed_item(invoke, cache) -> None:
    insert, remove = write("INSERT", "a", 1, SEQ), write("REMOVE", "a", 1, SEQ + 1)
    invoke(events.event([insert, remove]))
    invoke(events.event([insert]))  # retry from an older checkpoint
    assert state(cache, "orders-a-1")[0] == "not found (tombstone)"


def test_sequence_numbers_of_different_lengths_compare_as_numbers(invoke, cache) -> None:
    short, long = "9" * 21, "1" + "0" * 21  # 999... (21 digits) < 1000... (22 digits)
    invoke(events.event([write("MODIFY", "a", 1, long, "long")]))
    invoke(events.event([write("MODIFY", "a", 1, short, "short")]))
    assert state(cache, "orders-a-1") == ("item", "long")


def test_bisected_halves_redelivered_out_of_order_converge(invoke, cache) -> None:
    rng = random.Random(7)
    batch = [
        write(rng.choice(["INSERT", "MODIFY", "REMOVE"]), f"k{i % 5}", 1, SEQ + i, f"v{i}") for i in range(40)
    ]
    first, second = batch[:20], batch[20:]
    for delivery in (second, first, second[:10], first[10:], batch):
        assert invoke(events.event(delivery)) == {"batchItemFailures": []}
    for k in range(5):
        last = [r for r in batch if r["dynamodb"]["Keys"]["pk"]["S"] == f"k{k}"][-1]
        expected = "not found (tombstone)" if last["eventName"] == "REMOVE" else "item"
        assert state(cache, f"orders-k{k}-1")[0] == expected
        assert holding(cache, f"orders-k{k}-1")["version"] == last["dynamodb"]["SequenceNumber"]


def test_poison_record_reports_itself_and_everything_after(invoke, cache) -> None:
    poison = events.record("unknown_table", "INSERT", {"id": {"S": "x"}, "at": {"N": "1"}}, SEQ + 1)
    batch = [write("INSERT", "a", 1, SEQ), poison, write("INSERT", "b", 1, SEQ + 2, "after")]
    response = invoke(events.event(batch))
    assert failures(response) == [str(SEQ + 1), str(SEQ + 2)]
    assert state(cache, "orders-a-1")[0] == "item"
    # Applied anyway: re-delivery after the poison is skipped as a duplicate.
    assert state(cache, "orders-b-1") == ("item", "after")


def test_hyphens_percent_big_numbers_and_binary_keys(invoke, cache) -> None:
    big = "12345678901234567890123456789012345678"
    hyph = events.record("orders", "INSERT", keys_of("a-b%", 1), SEQ, new=events.item(keys_of("a-b%", 1)))
    num = events.record("orders", "INSERT", keys_of("n", 0), SEQ + 1, new=events.item(keys_of("n", 0)))
    num["dynamodb"]["Keys"]["sk"] = {"N": big}
    blob = events.record("blobs", "INSERT", {"b": {"B": "AAEC"}}, SEQ + 2, new={"b": {"B": "AAEC"}})
    assert invoke(events.event([hyph, num, blob])) == {"batchItemFailures": []}
    for key in ("orders-a%2Db%25-1", f"orders-n-{big}", "blobs-AAEC"):
        assert holding(cache, key)["state"] == "item", key


@pytest.mark.parametrize("event", [None, [], {"records": []}, {"Records": [{"eventName": "INSERT"}]}])
def test_malformed_event_raises_one_clear_error(invoke, event: Any) -> None:
    with pytest.raises(MalformedEventError):
        invoke(event)


def test_empty_batch_is_fine(invoke) -> None:
    assert invoke({"Records": []}) == {"batchItemFailures": []}


def test_script_flush_is_recovered(invoke, cache) -> None:
    invoke(events.event([write("INSERT", "a", 1, SEQ)]))
    cache.script_flush()
    assert invoke(events.event([write("MODIFY", "a", 1, SEQ + 1, "again")])) == {"batchItemFailures": []}
    assert state(cache, "orders-a-1") == ("item", "again")


def test_refused_write_is_reported_not_lost(invoke, cache) -> None:
    cache.hset("orders-a-1", "not", "ours")  # WRONGTYPE for GETRANGE: the write is refused
    response = invoke(events.event([write("INSERT", "b", 1, SEQ), write("INSERT", "a", 1, SEQ + 1)]))
    assert failures(response) == [str(SEQ + 1)]
    assert state(cache, "orders-b-1")[0] == "item"


def test_ten_thousand_records_in_one_batch(invoke, cache) -> None:
    batch = [write("MODIFY", f"k{i % 1000}", 1, SEQ + i, f"v{i}") for i in range(10_000)]
    assert invoke(events.event(batch)) == {"batchItemFailures": []}
    assert state(cache, "orders-k999-1") == ("item", "v9999")
    assert sum(1 for _ in cache.scan_iter(count=1000)) == 1000  # every node of a cluster


def _env_for(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    invalidator_handler.reset()


def test_redis_down_reports_whole_batch_quickly_then_recovers(
    monkeypatch: pytest.MonkeyPatch, own_redis: RedisServer
) -> None:
    _env_for(monkeypatch, own_redis.url)
    batch = [write("INSERT", f"k{i}", 1, SEQ + i) for i in range(5)]
    own_redis.stop()
    started = time.monotonic()
    response = invalidator_handler.handler(events.event(batch), None)
    elapsed = time.monotonic() - started
    assert failures(response) == [str(SEQ + i) for i in range(5)]
    # A refused connection fails at once; the client's two retries back off at most 0.5 s
    # each, so the batch is reported in about 1 s by design. Retrying per record, or waiting
    # on a timeout, would pass 5 s: the margin is for a loaded 2-core machine.
    assert elapsed < 5.0
    own_redis.start()  # same port: the next invocation reconnects
    assert invalidator_handler.handler(events.event(batch), None) == {"batchItemFailures": []}
    invalidator_handler.reset()


def test_redis_killed_mid_batch_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, own_redis: RedisServer
) -> None:
    _env_for(monkeypatch, own_redis.url)
    monkeypatch.setattr(protocol, "CHUNK_SIZE", 10)
    runtime = invalidator_handler.runtime()
    runtime._client.script_load(protocol.lua_source("apply"))  # so one pipeline = one chunk
    real_pool = routing.node_pool
    calls = {"n": 0}

    def pool_that_kills_on_third_chunk(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            own_redis.stop()
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(routing, "node_pool", pool_that_kills_on_third_chunk)  # one call per chunk
    batch = [write("INSERT", f"k{i}", 1, SEQ + i, f"v{i}") for i in range(50)]
    reported = failures(invalidator_handler.handler(events.event(batch), None))
    assert reported == [str(SEQ + i) for i in range(20, 50)]
    own_redis.start()  # data lost with the process: replaying from the checkpoint restores it
    client = redis.Redis.from_url(own_redis.url)
    resumed = [r for r in batch if r["dynamodb"]["SequenceNumber"] in reported]
    assert invalidator_handler.handler(events.event(resumed), None) == {"batchItemFailures": []}
    assert client.dbsize() == 30
    invalidator_handler.reset()


def emf_lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"_aws"' in line]


def test_one_log_line_per_invocation_and_metrics_published_for_many(
    invoke, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    batch = [write("INSERT", f"m{i}", 1, SEQ + i, "v") for i in range(5)]
    batch.append(write("MODIFY", "m0", 1, SEQ + 9, "w"))
    capfd.readouterr()
    caplog.clear()
    assert invoke(events.event(batch)) == {"batchItemFailures": []}
    (log,) = [r for r in caplog.records if r.name == "streamcache-invalidator"]
    assert log.levelname == "INFO" and log.getMessage() == "batch applied"
    (first,) = emf_lines(capfd)  # an environment's first invocation publishes at once
    assert first["BatchSize"] == [6.0] and first["RecordsApplied"] == [5.0]
    assert first["RecordsDeduplicated"] == [1.0] and len(first["StreamLagMs"]) == 1
    for seq in (20, 21):
        assert invoke(events.event([write("MODIFY", "m1", 1, SEQ + seq, "x")])) == {"batchItemFailures": []}
    assert emf_lines(capfd) == []  # within the interval: the values wait
    unusable = events.record("unknown-table", "INSERT", keys_of("z", 1), SEQ + 30)
    assert failures(invoke(events.event([unusable]))) == [str(SEQ + 30)]
    (emf,) = emf_lines(capfd)  # a failed record publishes everything pending at once
    assert emf["BatchSize"] == [1.0, 1.0, 1.0] and emf["RecordsApplied"] == [1.0, 1.0, 0.0]
    assert emf["RecordsFailed"] == [0.0, 0.0, 1.0] and len(emf["StreamLagMs"]) == 3


def test_the_batch_line_is_written_without_logger_info_where_nothing_else_listens(
    invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In Lambda the root logger's handler drops Powertools' records; here pytest's capture would not.
    logger = invalidator_handler.logger
    monkeypatch.setattr(logging.getLogger(logger.name), "propagate", False)
    monkeypatch.setattr(logger, "info", lambda *a, **k: pytest.fail("logger.info called"))
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    assert invoke(events.event([write("INSERT", "fast", 1, SEQ)])) == {"batchItemFailures": []}
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["level"] == "INFO" and line["message"] == "batch applied"
    assert line["location"].startswith("_publish:") and line["service"] == logger.service
    assert line["records"] == 1 and line["applied"] == 1


def test_metrics_flush_seconds_zero_publishes_every_invocation(
    invoke, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METRICS_FLUSH_SECONDS", "0")
    invalidator_handler.reset()
    capfd.readouterr()
    for i in range(2):
        assert invoke(events.event([write("INSERT", f"z{i}", 1, SEQ + i)])) == {"batchItemFailures": []}
        (emf,) = emf_lines(capfd)
        assert emf["BatchSize"] == [1.0] and emf["RecordsApplied"] == [1.0]


def test_the_hundredth_invocation_publishes(invoke, capfd: pytest.CaptureFixture[str]) -> None:
    invoke(events.event([write("INSERT", "first", 1, SEQ)]))  # the environment's first: published
    capfd.readouterr()
    for i in range(99):
        invoke(events.event([write("INSERT", f"h{i}", 1, SEQ + i)]))
    assert emf_lines(capfd) == []
    invoke(events.event([write("INSERT", "h99", 1, SEQ + 99)]))
    (emf,) = emf_lines(capfd)
    assert emf["BatchSize"] == [1.0] * 100  # EMF's limit of values per metric
