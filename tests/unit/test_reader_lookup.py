"""The reader's side of the protocol (streamcache.read.lookup) on fakeredis with the real Lua."""

from __future__ import annotations

from collections.abc import Callable

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
