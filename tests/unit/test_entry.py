"""The cache entry format (streamcache.entry): every kind, with and without the fill-mode stamp."""

from __future__ import annotations

import pytest

from streamcache import entry

V = "7".zfill(40)
STAMP = b"1764000000123"
ITEM = b'{"pk":{"S":"a"}}'


def test_item_and_tombstone_have_no_fill_stamp() -> None:
    item = entry.decode(b"I" + V.encode() + ITEM)
    assert (item.kind, item.version, item.item(), item.fill_ms) == (entry.ITEM, V, {"pk": {"S": "a"}}, None)
    tomb = entry.decode(b"T" + V.encode())
    assert (tomb.kind, tomb.found, tomb.is_answer, tomb.fill_ms) == (entry.TOMBSTONE, False, True, None)


def test_fill_payload_starts_after_the_stamp() -> None:
    fill = entry.decode(b"F" + V.encode() + STAMP + ITEM)
    assert (fill.kind, fill.version, fill.fill_ms) == (entry.FILL, V, 1764000000123)
    assert fill.item() == {"pk": {"S": "a"}}


def test_fill_of_not_found_is_the_stamp_alone() -> None:
    fill = entry.decode(b"F" + V.encode() + STAMP)
    assert (fill.is_answer, fill.found, fill.item(), fill.fill_ms) == (True, False, None, 1764000000123)


@pytest.mark.parametrize("rest", [b"", ITEM, b"12345", b"17640000001x3" + ITEM])
def test_fill_without_a_stamp_reads_as_a_miss(rest: bytes) -> None:
    found = entry.decode(b"F" + V.encode() + rest)
    assert (found.kind, found.is_answer) == (entry.INVALIDATED, False)


def test_marked_invalidation_carries_the_stamp() -> None:
    found = entry.decode(b"X" + V.encode() + b"F" + STAMP)
    assert (found.kind, found.version, found.payload) == (entry.INVALIDATED, V, b"")
    assert found.fill_ms == 1764000000123
    assert not found.is_answer


def test_plain_invalidation_is_not_in_fill_mode() -> None:
    assert entry.decode(b"X" + V.encode()).fill_ms is None


def test_marked_lease_yields_its_token_and_stamp() -> None:
    found = entry.decode(b"L" + V.encode() + b"F" + STAMP + b"00ab")
    assert (found.kind, found.payload, found.fill_ms) == (entry.LEASE, b"00ab", 1764000000123)
    plain = entry.decode(b"L" + V.encode() + b"00ab")
    assert (plain.payload, plain.fill_ms) == (b"00ab", None)


@pytest.mark.parametrize("value", [b"", b"I123", b"Z" + V.encode()])
def test_unrecognised_values_read_as_a_miss(value: bytes) -> None:
    found = entry.decode(value)
    assert (found.kind, found.version, found.is_answer) == (entry.INVALIDATED, entry.ZERO_VERSION, False)
