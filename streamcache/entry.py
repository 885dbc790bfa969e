"""The cache entry format: what one Redis key holds.

Every value is ``kind`` (1 ASCII byte) + ``version`` (40 ASCII digits) + the rest:

====  ==========================  ==================================  ===========
kind  written by                  payload                             reader sees
====  ==========================  ==================================  ===========
I     invalidator, new image      item, DynamoDB typed JSON           found
T     invalidator, REMOVE / TTL   empty                               not found
X     invalidator, no image or    empty                               miss
      fail-safe invalidation
L     reader, lease on a miss     lease token                         miss (wait)
F     reader, fill after a miss   fill_ms + item typed JSON           found / not found
                                  (empty item = not found)
====  ==========================  ==================================  ===========

``version`` is the stream SequenceNumber of the record that wrote I/T/X,
zero-padded to 40 digits so that Lua compares it as a string exactly (Lua
numbers are doubles: a 40-digit sequence number would lose precision).
L and F inherit the version of the entry they replaced (0 when none): a reader
never knows which stream record its DynamoDB read reflects.

``fill_ms`` is 13 digits of epoch milliseconds: Redis's clock when fill.lua
stored the fill, after the reader's DynamoDB read. A key in fill mode carries
it on: a marked invalidation is ``X`` + version + ``F`` + fill_ms, a lease on
it ``L`` + version + ``F`` + fill_ms + token. apply.lua compares a record's
creation time with it (see streamcache/lua/apply.lua). ``decode`` strips the
mark: ``Entry.fill_ms`` holds the stamp, ``payload`` the item or token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from streamcache.errors import MalformedEventError

VERSION_DIGITS = 40
HEADER = 1 + VERSION_DIGITS
STAMP_DIGITS = 13  # epoch ms, exact in a Lua double until the year 2286
MARK = b"F"  # after the version of an X or L: the key is in fill mode

ITEM = b"I"
TOMBSTONE = b"T"
INVALIDATED = b"X"
LEASE = b"L"
FILL = b"F"
MARKER = b"M"  # a query-cache partition marker: version + Redis ms when the invalidator moved it

ZERO_VERSION = "0" * VERSION_DIGITS


def pad_version(sequence_number: str) -> str:
    """A stream SequenceNumber (21 to 40 digits) as a fixed-width comparable string."""
    if (
        not isinstance(sequence_number, str)
        or not sequence_number.isdigit()
        or not sequence_number.isascii()
        or len(sequence_number) > VERSION_DIGITS
    ):
        raise MalformedEventError(
            f"SequenceNumber {sequence_number!r} is not a string of at most {VERSION_DIGITS} digits"
        )
    return sequence_number.zfill(VERSION_DIGITS)


def encode_item(image: dict[str, Any]) -> bytes:
    """Payload for an item in DynamoDB's typed JSON form (binary as base64 text)."""
    return orjson.dumps(image)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: bytes
    version: str
    payload: bytes
    fill_ms: int | None = None  # F, and X / L in fill mode: when the fill was stored

    @property
    def is_answer(self) -> bool:
        """True when the entry answers a read (item or "not found"), False on a miss."""
        return self.kind in (ITEM, TOMBSTONE, FILL)

    @property
    def found(self) -> bool:
        return self.kind in (ITEM, FILL) and bool(self.payload)

    def item(self) -> dict[str, Any] | None:
        """The typed item, or None for "not found" / a miss."""
        return orjson.loads(self.payload) if self.found else None


def decode(value: bytes) -> Entry:
    """Parse a stored value; anything unrecognised reads as a miss (kind X)."""
    kind = value[:1]
    if len(value) < HEADER or kind not in (ITEM, TOMBSTONE, INVALIDATED, LEASE, FILL):
        return _MISS
    version, rest = value[1:HEADER].decode("ascii"), value[HEADER:]
    if kind == FILL:
        stamp = _stamp(rest)
        # An F without its stamp (written before it existed) cannot be parsed: a miss.
        return _MISS if stamp is None else Entry(kind, version, rest[STAMP_DIGITS:], stamp)
    if kind in (INVALIDATED, LEASE) and rest[:1] == MARK:
        stamp = _stamp(rest[1:])
        if stamp is not None:
            return Entry(kind, version, rest[1 + STAMP_DIGITS :], stamp)
    return Entry(kind, version, rest)


def answer(value: bytes) -> bytes | None:
    """What ``decode(value)`` answers a read with, without building an ``Entry`` (batches of hits).

    The item's typed JSON, ``b""`` for "not found", or None when the entry is a
    miss: ``found.payload if found.found else b""`` when ``found.is_answer``.
    I and stamped F entries with an ASCII version are read here; anything else
    goes through ``decode``.
    """
    kind = value[:1]
    if len(value) >= HEADER and value[1:HEADER].isascii():
        if kind == ITEM:
            return value[HEADER:]
        if kind == FILL:
            stamp = value[HEADER:_STAMPED]  # not _stamp(value[HEADER:]): that copies the payload
            if len(stamp) == STAMP_DIGITS and stamp.isdigit():
                return value[_STAMPED:]
    found = decode(value)
    if not found.is_answer:
        return None
    return found.payload if found.found else b""


def _stamp(raw: bytes) -> int | None:
    digits = raw[:STAMP_DIGITS]
    if len(digits) == STAMP_DIGITS and digits.isdigit():
        return int(digits)
    return None


_MISS = Entry(INVALIDATED, ZERO_VERSION, b"")
_STAMPED = HEADER + STAMP_DIGITS  # where a fill's payload starts
