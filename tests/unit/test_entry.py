"""The cache entry format (streamcache.entry): every kind, with and without the fill-mode stamp."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- entry.answer: decode's answer without an Entry --------------------------------------


def reference_answer(value: bytes) -> tuple[str, Any]:
    try:
        found = entry.decode(value)
    except Exception as err:  # a non-ASCII version: decode raises, and so must answer
        return "error", type(err)
    if not found.is_answer:
        return "value", None
    return "value", found.payload if found.found else b""


def answer_outcome(value: bytes) -> tuple[str, Any]:
    try:
        return "value", entry.answer(value)
    except Exception as err:
        return "error", type(err)


heads = st.sampled_from([b"I", b"T", b"X", b"L", b"F", b"M", b"Q", b"", b"i"])
versions = st.one_of(
    st.just(V.encode()), st.binary(min_size=38, max_size=41), st.from_regex(rb"\A[0-9]{40}\Z")
)
tails = st.one_of(
    st.just(b""),
    st.just(STAMP),
    st.just(STAMP + ITEM),
    st.just(b"F" + STAMP),
    st.just(b"F" + STAMP + b"tok"),
    st.just(STAMP[:12]),
    st.just(b"176400000012x" + ITEM),
    st.just(ITEM),
    st.binary(max_size=20),
)


@settings(max_examples=1000)
@given(st.one_of(st.builds(lambda h, v, t: h + v + t, heads, versions, tails), st.binary(max_size=60)))
def test_answer_is_what_decode_answers(value: bytes) -> None:
    assert answer_outcome(value) == reference_answer(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"I" + V.encode() + ITEM, ITEM),
        (b"I" + V.encode(), b""),
        (b"T" + V.encode(), b""),
        (b"F" + V.encode() + STAMP + ITEM, ITEM),
        (b"F" + V.encode() + STAMP, b""),
        (b"F" + V.encode() + ITEM, None),  # no stamp: a miss
        (b"X" + V.encode() + b"F" + STAMP, None),
        (b"L" + V.encode() + b"tok", None),
        (b"I" + V.encode()[:39], None),  # too short for a header
        (b"garbage", None),
    ],
)
def test_answer_of_every_kind(value: bytes, expected: bytes | None) -> None:
    assert entry.answer(value) == expected


def test_answer_of_a_non_ascii_version_fails_as_decode_does() -> None:
    value = b"I" + b"\xff" * 40 + ITEM
    with pytest.raises(UnicodeDecodeError):
        entry.decode(value)
    with pytest.raises(UnicodeDecodeError):
        entry.answer(value)
