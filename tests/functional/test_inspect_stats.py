"""inspect: each entry kind in words, written by the protocol's own scripts; stats: counts per table."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from streamcache.cli import main
from streamcache.entry import pad_version
from streamcache.protocol import Scripts

KEY = "orders-u1-42"
VERSION = "1100000000017454423009"
ITEM = {"pk": {"S": "u1"}, "sk": {"N": "42"}, "status": {"S": "NEW"}}


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[redis.Redis]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("KEY_SCHEMA", raising=False)
    monkeypatch.delenv("CACHE_KEY_PREFIX", raising=False)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def inspect(capsys: pytest.CaptureFixture[str], *key: str) -> dict[str, str]:
    assert main(["inspect", "orders", *key]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {line[:11].strip(): line[12:] for line in lines}


def apply(scripts: Scripts, kind: str, payload: bytes = b"", created_ms: int = 0) -> int:
    """apply.lua as the invalidator calls it (ARGV[3] is the whole entry, built by the client)."""
    version = pad_version(VERSION)
    entry = kind.encode() + version.encode() + payload
    return int(scripts.apply(keys=[KEY], args=[kind, version, entry, 600, created_ms, 1000]))


def lease(scripts: Scripts, token: str = "abc123") -> bytes:
    return bytes(scripts.lease(keys=[KEY], args=[token, 2000]))


def fill(scripts: Scripts, payload: bytes) -> None:
    assert scripts.fill(keys=[KEY], args=[lease(scripts), payload, 600]) == 1


def test_absent_key(capsys: pytest.CaptureFixture[str], cache: redis.Redis) -> None:
    shown = inspect(capsys, "pk=u1", "sk=42")
    assert shown == {
        "key": KEY,
        "kind": "absent: nothing cached; the next read goes to DynamoDB and fills it",
    }


def test_item_from_the_invalidator(capsys: pytest.CaptureFixture[str], cache: redis.Redis) -> None:
    apply(Scripts.register(cache), "I", json.dumps(ITEM).encode())
    shown = inspect(capsys, "sk=42,pk=u1")  # any order: the key schema puts pk first
    assert shown["key"] == KEY
    assert shown["kind"].startswith("item: written by the invalidator from a stream record's new image")
    assert shown["version"].startswith(f"stream record {VERSION} ")
    assert shown["fill stamp"] == "none (not in fill mode)"
    assert shown["ttl"].endswith(" s left") and 590 < float(shown["ttl"].split()[0]) <= 600
    assert json.loads(shown["item"]) == ITEM


def test_tombstone(capsys: pytest.CaptureFixture[str], cache: redis.Redis) -> None:
    apply(Scripts.register(cache), "T")
    shown = inspect(capsys, "pk=u1", "sk=42")
    assert shown["kind"].startswith("not found (tombstone): written by the invalidator for a REMOVE")
    assert shown["item"] == "none"


def test_invalidation(capsys: pytest.CaptureFixture[str], cache: redis.Redis) -> None:
    apply(Scripts.register(cache), "X")
    shown = inspect(capsys, "pk=u1", "sk=42")
    assert shown["kind"].startswith(
        "invalidated: written by the invalidator for a record without a new image"
    )
    assert shown["fill stamp"] == "none (not in fill mode)"


def test_lease_inherits_no_version_on_an_empty_key(
    capsys: pytest.CaptureFixture[str], cache: redis.Redis
) -> None:
    lease(Scripts.register(cache))
    shown = inspect(capsys, "pk=u1", "sk=42")
    assert shown["kind"].startswith("lease: a reader missed and is reading DynamoDB")
    assert shown["version"].startswith("none (no stream record has written the key)")
    assert 0 < float(shown["ttl"].split()[0]) <= 2.0


@pytest.mark.parametrize(
    ("payload", "kind"), [(json.dumps(ITEM).encode(), "item (reader fill)"), (b"", "not found (reader fill)")]
)
def test_reader_fill(
    capsys: pytest.CaptureFixture[str], cache: redis.Redis, payload: bytes, kind: str
) -> None:
    fill(Scripts.register(cache), payload)
    shown = inspect(capsys, "pk=u1", "sk=42")
    assert shown["kind"].startswith(f"{kind}: stored by a reader after a miss")
    stamp_ms = int(shown["fill stamp"].split()[0])
    server_ms = int(cache.time()[0]) * 1000
    assert server_ms - 5000 < stamp_ms <= server_ms + 1000
    assert shown["item"] == ("none" if not payload else json.dumps(ITEM, sort_keys=True))


def test_invalidation_and_lease_in_fill_mode(capsys: pytest.CaptureFixture[str], cache: redis.Redis) -> None:
    scripts = Scripts.register(cache)
    fill(scripts, json.dumps(ITEM).encode())
    assert (
        apply(scripts, "I", json.dumps(ITEM).encode(), created_ms=1) == 2
    )  # older than the fill: invalidates
    shown = inspect(capsys, "pk=u1", "sk=42")
    assert shown["kind"].startswith("invalidated, in fill mode:")
    assert shown["version"].startswith(f"stream record {VERSION} ")
    stamp = shown["fill stamp"].split()[0]
    lease(scripts)
    shown = inspect(capsys, "pk=u1", "sk=42")
    assert shown["kind"].startswith("lease, in fill mode:")
    assert shown["version"].startswith(f"stream record {VERSION}, inherited")
    assert shown["fill stamp"].split()[0] == stamp


@pytest.mark.parametrize("value", [b"hello", b"I123", b"F" + b"0" * 40 + b"xx"])
def test_unrecognised_value(capsys: pytest.CaptureFixture[str], cache: redis.Redis, value: bytes) -> None:
    cache.set(KEY, value)
    assert inspect(capsys, "pk=u1", "sk=42")["kind"].startswith(
        f"unrecognised value ({len(value)} bytes): readers treat it as a miss"
    )


def test_not_a_string(capsys: pytest.CaptureFixture[str], cache: redis.Redis) -> None:
    cache.hset(KEY, "a", "b")
    assert inspect(capsys, "pk=u1", "sk=42")["kind"] == "a Redis hash, not a streamcache entry"


def test_stats_counts_keys_per_table_and_kind(capsys: pytest.CaptureFixture[str], cache: redis.Redis) -> None:
    version = pad_version(VERSION)
    cache.set("orders-u1-1", b"I" + version.encode() + b"{}")
    cache.set("orders-u1-2", b"T" + version.encode())
    cache.set("my%2Dtable-9", b"X" + version.encode())
    cache.set("stray", b"x")
    cache.zadd("streamcache:consistency-samples", {"orders-u1-1": 1.0})
    cache.set("{orders/%2Dgsi/u1}q", b"x")  # a query-cache partition marker and one of its pages
    cache.set("{orders/%2Dgsi/u1}q:abc123", b"x")
    cache.get("orders-u1-1")
    cache.get("missing")
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "keys: 7 scanned" in out
    assert "  (the consistency checker's samples): 1 (1 other)" in out
    assert "  orders: 4 (1 items, 1 query markers, 1 query pages, 1 tombstones)" in out
    assert "  my-table: 1 (1 invalidations)" in out
    assert "  other: 1 (1 other)" in out
    assert "memory: " in out and " used, peak " in out
    hits_line = next(line for line in out.splitlines() if line.startswith("redis lookups"))
    assert " hits, " in hits_line and " misses (" in hits_line


def test_stats_stops_at_its_limit(capsys: pytest.CaptureFixture[str], cache: redis.Redis) -> None:
    for i in range(30):
        cache.set(f"orders-u{i}-1", b"T" + pad_version(VERSION).encode())
    assert main(["stats", "--limit", "10"]) == 0
    assert "keys: at least 10 scanned" in capsys.readouterr().out


def test_unset_redis_url_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["inspect", "orders", "pk=u1", "sk=42"]) == 2
    err = capsys.readouterr().err
    assert "REDIS_URL is required" in err and err.count("\n") == 1


def test_stats_and_inspect_on_a_cluster_cover_every_primary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cluster_url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", cluster_url)
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.delenv("KEY_SCHEMA", raising=False)
    monkeypatch.delenv("CACHE_KEY_PREFIX", raising=False)
    cluster = redis.RedisCluster.from_url(cluster_url)
    try:
        for i in range(40):  # 40 keys land on all three primaries
            cluster.set(f"orders-u{i}-1", b"T" + pad_version(VERSION).encode())
    finally:
        cluster.close()
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "keys: 40 scanned" in out and "  orders: 40 (40 tombstones)" in out
    assert ", over 3 primaries" in out
    assert inspect(capsys, "pk=u7", "sk=1")["kind"].startswith("not found (tombstone)")
