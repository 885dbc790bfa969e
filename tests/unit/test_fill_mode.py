"""apply.lua / lease.lua / fill.lua on a reader-filled key (fakeredis, the real Lua).

A fill is stamped with Redis's clock; a record created more than the margin
after that stamp writes its own entry and ends fill mode; any other record
(created before, within the margin, or without a creation time) leaves the
key invalidate-only, carrying the stamp.
"""

from __future__ import annotations

import fakeredis
import pytest

from streamcache import entry
from streamcache.protocol import APPLIED, INVALIDATED, SKIPPED, Scripts
from streamcache.read.lookup import Lease, ReaderCache

V0, V1, V2, V3 = (str(n).zfill(40) for n in (0, 1, 2, 3))
MARGIN = 1000
IMAGE = b'{"pk":{"S":"new"}}'


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def redis_ms(client: fakeredis.FakeRedis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def apply(client: fakeredis.FakeRedis, kind: str, version: str, created_ms: int, payload: bytes = b"") -> int:
    args = [kind, version, (kind + version).encode() + payload, 60, created_ms, MARGIN]  # ARGV[3]: the entry
    return int(Scripts.register(client).apply(keys=["k"], args=args))


def filled(client: fakeredis.FakeRedis) -> int:
    """A reader fill on an empty key; its stamp."""
    cache = ReaderCache(client)
    claim = cache.claim("k")
    assert isinstance(claim, Lease)
    before = redis_ms(client)
    assert cache.fill("k", claim, b'{"pk":{"S":"old"}}', 60)
    stamp = entry.decode(client.get("k")).fill_ms
    assert stamp is not None and before <= stamp <= redis_ms(client)
    return stamp


def test_fill_is_stamped_with_redis_time(client) -> None:
    raw = client.get("k") if filled(client) else None
    assert raw is not None and raw[:41] == b"F" + V0.encode() and raw[41:54].isdigit()


def test_record_created_after_fill_and_margin_serves_its_image(client) -> None:
    stamp = filled(client)
    assert apply(client, "I", V1, stamp + MARGIN + 1, IMAGE) == APPLIED
    assert client.get("k") == b"I" + V1.encode() + IMAGE
    # fill mode is over: the next record writes its image too, whatever its time
    assert apply(client, "I", V2, 0, IMAGE) == APPLIED


@pytest.mark.parametrize("late_by", [0, MARGIN // 2, MARGIN])
def test_record_created_within_the_margin_only_invalidates(client, late_by: int) -> None:
    stamp = filled(client)
    assert apply(client, "I", V1, stamp + late_by, IMAGE) == INVALIDATED
    assert client.get("k") == b"X" + V1.encode() + b"F" + str(stamp).encode()


def test_record_without_creation_time_only_invalidates(client) -> None:
    stamp = filled(client)
    assert apply(client, "T", V1, 0) == INVALIDATED
    assert entry.decode(client.get("k")).fill_ms == stamp


def test_marked_invalidation_keeps_the_stamp_until_a_later_record(client) -> None:
    stamp = filled(client)
    assert apply(client, "I", V1, stamp - 5, IMAGE) == INVALIDATED
    assert apply(client, "I", V2, stamp, IMAGE) == INVALIDATED
    assert apply(client, "I", V2, stamp + MARGIN + 1, IMAGE) == SKIPPED  # re-delivery: version decides
    assert entry.decode(client.get("k")).fill_ms == stamp
    assert apply(client, "X", V3, stamp + MARGIN + 1) == APPLIED
    assert client.get("k") == b"X" + V3.encode()  # unmarked: out of fill mode


def test_lease_on_marked_invalidation_keeps_mark_and_stamp_and_fill_restamps(client) -> None:
    stamp = filled(client)
    apply(client, "I", V1, stamp, IMAGE)
    cache = ReaderCache(client)
    claim = cache.claim("k")
    assert isinstance(claim, Lease) and claim.value.startswith(b"L" + V1.encode())
    assert b"F" not in claim.value[41:]  # the reader holds the unmarked lease
    stored = entry.decode(client.get("k"))
    assert (stored.kind, stored.fill_ms) == (entry.LEASE, stamp)
    assert cache.fill("k", claim, b"", 60)
    refill = entry.decode(client.get("k"))
    assert (refill.kind, refill.version, refill.found) == (entry.FILL, V1, False)
    assert refill.fill_ms is not None and refill.fill_ms >= stamp


def test_fill_keeps_a_later_stamp_of_its_marked_lease(client) -> None:
    future = redis_ms(client) + 10**6  # the clock stepped back since the mark was written
    client.set("k", b"L" + V1.encode() + b"F" + str(future).encode() + b"00ff")
    assert ReaderCache(client).fill("k", Lease(b"L" + V1.encode() + b"00ff"), b"", 60)
    assert entry.decode(client.get("k")).fill_ms == future


def test_fill_rejects_a_lease_with_another_token(client) -> None:
    client.set("k", b"L" + V1.encode() + b"F" + b"1764000000000" + b"00ff")
    assert not ReaderCache(client).fill("k", Lease(b"L" + V1.encode() + b"00fe"), b"", 60)


def test_late_record_replaces_a_marked_lease_and_its_fill_is_rejected(client) -> None:
    stamp = filled(client)
    apply(client, "I", V1, stamp, IMAGE)
    cache = ReaderCache(client)
    claim = cache.claim("k")
    assert isinstance(claim, Lease)
    assert apply(client, "I", V2, stamp + MARGIN + 1, IMAGE) == APPLIED
    assert not cache.fill("k", claim, b"{}", 60)
    assert client.get("k") == b"I" + V2.encode() + IMAGE


@pytest.mark.parametrize("legacy", [b"F" + V0.encode() + b'{"a":{"S":"b"}}', b"X" + V0.encode() + b"F"])
def test_fill_mode_entry_without_a_stamp_is_stamped_now(client, legacy: bytes) -> None:
    client.set("k", legacy)
    before = redis_ms(client)
    assert apply(client, "I", V1, before - 1, IMAGE) == INVALIDATED
    stamp = entry.decode(client.get("k")).fill_ms
    assert stamp is not None and stamp >= before
