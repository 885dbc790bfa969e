"""``python -m streamcache check`` and ``warm`` end to end: a moto server, a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from streamcache import entry
from streamcache.cli import main
from streamcache.keys import cache_key
from streamcache.local.demo import typed_key
from streamcache.local.embedded import embedded_aws
from streamcache.local.inspect import holding
from streamcache.ops.check import Check
from streamcache.ops.warm import RateLimit
from tests.conftest import RedisTarget

from .conftest import create_orders_table

Key = tuple[str, int]
KEYS: list[Key] = [(f"c{i % 7}-x%", i) for i in range(120)]  # hyphens and % exercise the key codec


@dataclass(frozen=True)
class Env:
    dynamodb: Any
    cache: Any  # redis.Redis or RedisCluster


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Env]:
    yield from _env(monkeypatch, RedisTarget(redis_url, cluster=False))


@pytest.fixture
def cluster_env(monkeypatch: pytest.MonkeyPatch, cluster_url: str) -> Iterator[Env]:
    yield from _env(monkeypatch, RedisTarget(cluster_url, cluster=True))


def _env(monkeypatch: pytest.MonkeyPatch, target: RedisTarget) -> Iterator[Env]:
    import boto3

    with embedded_aws("server") as aws:
        for name, value in target.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", str(aws.endpoint_url))
        for name in ("TABLE_NAME", "CACHE_KEY_PREFIX", "KEY_SCHEMA"):
            monkeypatch.delenv(name, raising=False)
        dynamodb = boto3.client("dynamodb", endpoint_url=aws.endpoint_url)
        create_orders_table(dynamodb)
        for i, key in enumerate(KEYS):
            dynamodb.put_item(TableName="orders", Item={**typed_key(key), "qty": {"N": f"{i}.50"}})
        cache = target.client()
        cache.flushall()
        try:
            yield Env(dynamodb, cache)
        finally:
            cache.flushall()
            cache.close()


def name_of(key: Key) -> str:
    return cache_key("orders", typed_key(key), ("pk", "sk"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def table_item(env: Env, key: Key) -> dict[str, Any] | None:
    return env.dynamodb.get_item(TableName="orders", Key=typed_key(key), ConsistentRead=True).get("Item")


def test_warm_fills_a_cold_cache_with_the_tables_items(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "warm", "--table", "orders", "--segments", "3")
    assert code == 0, err
    assert f"scanned {len(KEYS)}, filled {len(KEYS)}," in out
    assert "warm: scanned" in err  # progress goes to stderr
    for key in KEYS:
        held = holding(env.cache, name_of(key))
        assert held["state"] == "item (reader fill)" and held["item"] == table_item(env, key)


def test_warm_leaves_cached_keys_alone_and_stops_at_the_limit(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = entry.ITEM + str(10**30).zfill(40).encode() + b'{"pk":{"S":"kept"}}'
    env.cache.set(name_of(KEYS[0]), newer)
    code, out, _ = run(capsys, "warm", "--table", "orders", "--segments", "1", "--max-rcu", "1000")
    assert code == 0 and "already cached 1" in out
    assert env.cache.get(name_of(KEYS[0])) == newer
    env.cache.flushall()
    code, out, _ = run(capsys, "warm", "--table", "orders", "--limit", "10", "--segments", "2")
    assert code == 0 and "scanned 10," in out
    assert len(env.cache.keys("orders-*")) == 10


def test_check_of_a_warm_cache_is_all_consistent(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "warm", "--table", "orders")
    code, out, err = run(capsys, "check", "--table", "orders", "--sample", "50", "--settle-seconds", "0")
    assert code == 0, err
    assert out.strip() == "checked 50 cached key(s) of 'orders': 50 consistent, 0 inconsistent, nines >= 1.7"


def test_check_names_a_stale_key_and_repair_invalidates_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a warm cache, then a write whose record never reaches the cache (a lost invalidation)
    run(capsys, "warm", "--table", "orders")
    stale = KEYS[5]
    env.dynamodb.put_item(TableName="orders", Item={**typed_key(stale), "qty": {"N": "99"}})
    # WHEN check runs
    code, out, _ = run(capsys, "check", "--table", "orders", "--sample", "1000", "--settle-seconds", "0")
    # THEN it names the key, and only that key
    lines = out.splitlines()
    assert code == 1 and lines[0] == name_of(stale)
    assert lines[1].startswith(
        f"checked {len(KEYS)} cached key(s) of 'orders': {len(KEYS) - 1} consistent, 1 "
    )
    # AND --repair invalidates it, after which check is clean
    code, out, _ = run(capsys, "check", "--table", "orders", "--settle-seconds", "0", "--repair")
    assert code == 1 and "1 invalidated (--repair)" in out
    assert holding(env.cache, name_of(stale))["state"] == "invalidated"
    assert run(capsys, "check", "--table", "orders", "--settle-seconds", "0")[0] == 0


def test_warm_then_check_on_a_cluster(cluster_env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "warm", "--table", "orders", "--segments", "2")
    assert code == 0 and f"filled {len(KEYS)}," in out, err
    cluster_env.dynamodb.put_item(TableName="orders", Item={**typed_key(KEYS[3]), "qty": {"N": "99"}})
    code, out, _ = run(capsys, "check", "--table", "orders", "--settle-seconds", "0", "--repair")
    assert (code, out.splitlines()[0]) == (1, name_of(KEYS[3]))
    assert f"checked {len(KEYS)} cached key(s)" in out and "1 invalidated" in out
    assert run(capsys, "check", "--table", "orders", "--settle-seconds", "0")[0] == 0


def test_a_mismatch_that_settles_is_not_reported(env: Env) -> None:
    # GIVEN a key behind the table, whose record is "in flight"; it lands while check settles
    name = name_of(KEYS[0])
    env.cache.set(name, entry.ITEM + b"1".zfill(40) + b'{"pk":{"S":"old"}}')

    def record_lands(_: float) -> None:
        env.cache.delete(name)

    check = Check(env.cache, lambda key: {"pk": {"S": "new"}}, 60, sleep=record_lands)
    assert check.run([name], settle_seconds=5, repair=False).inconsistent == []
    env.cache.set(name, entry.ITEM + b"1".zfill(40) + b'{"pk":{"S":"old"}}')
    assert Check(env.cache, lambda key: {"pk": {"S": "new"}}, 60, sleep=lambda _: None).run(
        [name], settle_seconds=5, repair=False
    ).inconsistent == [name]


@pytest.mark.parametrize("command", ["check", "warm"])
def test_a_missing_table_is_one_line_and_exit_2(
    env: Env, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, err = run(capsys, command, "--table", "nope")
    assert code == 2 and out == ""
    expected = "table 'nope' not found (check --table and the region/endpoint)"
    assert err.strip() == f"python -m streamcache {command}: error: {expected}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check"], "--table is required"),
        (["check", "--table", "orders", "--sample", "0"], "--sample: 0 is out of range"),
        (["check", "--table", "orders", "--settle-seconds", "-1"], "--settle-seconds: -1.0 is out of range"),
        (["warm", "--table", "orders", "--segments", "100"], "--segments: 100 is out of range"),
        (["warm", "--table", "orders", "--max-rcu", "lots"], "--max-rcu: 'lots' is not a number"),
        (["warm", "--table", "orders", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)
    try:
        code = main(argv)  # --table missing is found after parsing
    except SystemExit as exited:  # argparse's own errors
        code = int(exited.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_rate_limit_waits_once_the_budget_is_spent() -> None:
    now = [0.0]
    slept: list[float] = []
    limit = RateLimit(10.0, clock=lambda: now[0])

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limit.wait(sleep)
    limit.spend(25.0)  # 10 available: 15 in debt, 1.5 s at 10 units/s
    limit.wait(sleep)
    assert slept and sum(slept) == pytest.approx(1.5, abs=0.01)
