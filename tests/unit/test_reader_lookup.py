"""The reader's side of the protocol (streamcache.read.lookup) on fakeredis with the real Lua."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fakeredis
import pytest

from streamcache import entry
from streamcache.protocol import Scripts
from streamcache.read import lookup
from streamcache.read.lookup import Lease, ReaderCache

V1 = "1".zfill(40)
V2 = "2".zfill(40)
STAMP = "1764000000000"  # a fill's Redis time, epoch ms


class FakeTime:
    """A clock that only moves when the reader sleeps; ``on_sleep`` plays the other reader."""

    def __init__(self, on_sleep: Callable[[int], None] = lambda n: None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(len(self.sleeps))


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def reader(client: fakeredis.FakeRedis, time: FakeTime | None = None) -> ReaderCache:
    time = time or FakeTime()
    return ReaderCache(client, Scripts.register(client), sleep=time.sleep, clock=time.clock)


@pytest.mark.parametrize(
    ("value", "answers"),
    [
        (b"I" + V1.encode() + b"{}", True),
        (b"T" + V1.encode(), True),
        (b"F" + V1.encode() + STAMP.encode(), True),
        (b"F" + V1.encode(), False),  # an F without its stamp cannot be parsed: a miss
        (b"X" + V1.encode(), False),
        (b"L" + V1.encode() + b"tok", False),
        (b"garbage", False),
    ],
)
def test_get_answers_only_from_item_tombstone_and_fill(client, value: bytes, answers: bool) -> None:
    client.set("k", value)
    assert (reader(client).get("k") is not None) is answers


def test_a_miss_on_an_invalidated_key_takes_a_lease_inheriting_its_version(client) -> None:
    client.set("k", "X" + V2)
    claim = reader(client).claim("k")
    assert isinstance(claim, Lease)
    assert claim.value.startswith(b"L" + V2.encode())
    assert 0 < client.pttl("k") <= lookup.LEASE_MS


def test_fill_under_a_standing_lease_is_stored_as_f(client) -> None:
    cache = reader(client)
    claim = cache.claim("k")
    assert isinstance(claim, Lease)
    assert cache.fill("k", claim, b'{"a":{"S":"b"}}', 60)
    stored = entry.decode(client.get("k"))
    assert (stored.kind, stored.version, stored.item()) == (entry.FILL, "0" * 40, {"a": {"S": "b"}})
    assert 55 < client.ttl("k") <= 60


def test_fill_after_an_invalidator_write_is_rejected(client) -> None:
    cache = reader(client)
    claim = cache.claim("k")
    assert isinstance(claim, Lease)
    Scripts.register(client).apply(keys=["k"], args=["X", V1, "X" + V1, 60, 0, 1000])
    assert not cache.fill("k", claim, b"{}", 60)
    assert client.get("k") == b"X" + V1.encode()


def test_a_waiter_answers_from_the_other_readers_fill(client) -> None:
    client.set("k", "L" + V1 + "other")

    def other_reader_fills(n: int) -> None:
        if n == 2:
            client.set("k", "F" + V1 + STAMP + '{"a":{"S":"b"}}')

    time = FakeTime(other_reader_fills)
    claim = reader(client, time).claim("k")
    assert isinstance(claim, entry.Entry) and claim.kind == entry.FILL
    assert len(time.sleeps) == 2


def test_a_waiter_gives_up_within_the_budget_and_does_not_fill(client) -> None:
    client.set("k", "L" + V1 + "other")
    time = FakeTime()
    assert reader(client, time).claim("k") is None
    assert sum(time.sleeps) <= lookup.WAIT_BUDGET_S
    assert sum(time.sleeps) > lookup.WAIT_BUDGET_S / 2
    assert client.get("k") == b"L" + V1.encode() + b"other"


def test_a_waiter_takes_over_when_the_other_lease_is_invalidated(client) -> None:
    client.set("k", "L" + V1 + "other")

    def invalidator_writes(n: int) -> None:
        if n == 1:
            Scripts.register(client).apply(keys=["k"], args=["X", V2, "X" + V2, 60, 0, 1000])

    claim = reader(client, FakeTime(invalidator_writes)).claim("k")
    assert isinstance(claim, Lease)
    assert claim.value.startswith(b"L" + V2.encode())


# -- GET first or lease first: the same claims, fewer round trips on misses ------------------

CLAIM_STATES = [
    None,  # absent
    b"I" + V1.encode() + b'{"a":{"S":"b"}}',
    b"T" + V1.encode(),
    b"F" + V1.encode() + STAMP.encode() + b'{"a":{"N":"1"}}',
    b"F" + V1.encode() + STAMP.encode(),  # a filled "not found"
    b"F" + V1.encode(),  # an F without its stamp: a miss that must not be filled over
    b"X" + V2.encode(),
    b"X" + V2.encode() + b"F" + STAMP.encode(),  # an invalidation in fill mode
    b"L" + V1.encode() + b"other",  # another reader's lease: wait, then read without filling
    b"garbage",
    b"Q" + b"9" * 60,  # an unknown kind, long enough to be kept by lease.lua
]


def counting_gets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of every GET a ReaderCache sends from now on."""
    gets: list[str] = []
    send = lookup.command

    def command(pool: Any, connections: Any, *args: Any) -> Any:
        if args[0] == "GET":
            gets.append(args[1])
        return send(pool, connections, *args)

    monkeypatch.setattr(lookup, "command", command)
    return gets


@pytest.mark.parametrize("value", CLAIM_STATES)
def test_a_claim_is_the_same_whether_the_get_or_the_lease_comes_first(
    value: bytes | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookup, "new_token", lambda: "0123456789abcdef")
    outcomes = []
    gets = counting_gets(monkeypatch)
    for miss_share, gets_expected in ((0.0, 1), (1.0, 0)):
        client = fakeredis.FakeRedis()
        if value is not None:
            client.set("k", value)
        gets.clear()
        cache = reader(client)
        cache.miss_share = miss_share
        claim = cache.claim("k")
        assert len(gets) == gets_expected
        outcomes.append((claim, client.get("k"), client.pttl("k") > 0))
    assert outcomes[0] == outcomes[1]


def test_claims_lease_first_while_most_recent_ones_missed_and_get_first_again_once_they_hit(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    gets = counting_gets(monkeypatch)
    cache = reader(client)
    calls = []
    for _ in range(12):  # misses: each claim is a lease on an absent key
        client.delete("k")
        assert isinstance(cache.claim("k"), Lease)
        calls.append(len(gets))
    assert calls[0] == 1  # a fresh reader starts with the GET
    assert calls[-1] == calls[-2] < 12  # then the lease alone: no GET
    assert cache.miss_share > lookup.LEASE_FIRST_ABOVE
    client.set("k", b"I" + V1.encode() + b"{}")
    before = len(gets)
    answers = [cache.claim("k") for _ in range(12)]  # hits: the lease answers them, then GETs do
    assert all(isinstance(a, entry.Entry) and a.kind == entry.ITEM for a in answers)
    assert 0 < len(gets) - before < 12
    assert cache.miss_share <= lookup.LEASE_FIRST_ABOVE
    assert client.get("k") == b"I" + V1.encode() + b"{}"  # a lease never replaced the answer


def test_the_first_claims_of_a_reader_get_first(client, monkeypatch: pytest.MonkeyPatch) -> None:
    client.set("k", b"T" + V1.encode())
    gets = counting_gets(monkeypatch)
    cache = reader(client)
    assert cache.claim("k") is not None
    assert gets == ["k"]


def test_leases_and_fills_load_their_script_again_after_a_script_flush(client) -> None:
    cache = reader(client)
    cache.miss_share = 1.0  # the lease runs first
    first = cache.claim("k")
    assert isinstance(first, Lease)
    client.script_flush()  # a restart or failover: the server forgot the scripts
    assert cache.fill("k", first, b"{}", 60)
    client.delete("k")
    client.script_flush()
    assert isinstance(cache.claim("k"), Lease)


def test_get_many_answers_what_get_answers_as_payloads(client) -> None:
    keys = [f"k{i}" for i in range(len(CLAIM_STATES))]
    for key, value in zip(keys, CLAIM_STATES, strict=True):
        if value is not None:
            client.set(key, value)
    cache = reader(client)
    expected = []
    for key in keys:
        found = cache.get(key)
        expected.append(None if found is None else (found.payload if found.found else b""))
    assert cache.get_many(keys) == expected
    assert expected.count(None) == 7  # absent, unstamped F, X, marked X, L, garbage, unknown kind
