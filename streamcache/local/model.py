"""A model of the truth: every state each item of the table went through, in stream order.

The consistency suite writes through ``Truth``: each write changes the model
table and appends the stream record DynamoDB would emit for it. Readers read
the model table (a ``streamcache.read.dynamodb.Table``); the checks compare what the cache
holds with the item's history. Every image carries a unique ``rev`` attribute
so that a cached item names exactly the state it came from.

Item identity is the model's own (``Decimal`` for numbers, so ``1.50`` and
``1.5`` are one item), never ``streamcache.keys``: the code under test must
agree with it, not define it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from streamcache import entry
from streamcache.keys import cache_key
from streamcache.local import events

Typed = dict[str, Any]
OPERATIONS = ("INSERT", "MODIFY", "REMOVE", "TTL")
VIEWS = ("KEYS_ONLY", "NEW_IMAGE", "NEW_AND_OLD_IMAGES")


@dataclass(frozen=True, slots=True)
class State:
    sequence: int  # the write's stream SequenceNumber; 0 for "before any write"
    image: Typed | None  # None: the item does not exist


@dataclass
class History:
    table: str
    key: Typed  # typed key attributes as first written
    cache_key: str
    states: list[State] = field(default_factory=lambda: [State(0, None)])

    @property
    def latest(self) -> int:
        return len(self.states) - 1

    def absent_indexes(self) -> list[int]:
        return [i for i, s in enumerate(self.states) if s.image is None]


def identity(table: str, key: Mapping[str, Typed]) -> tuple[Any, ...]:
    """The item's identity as DynamoDB sees it (numbers by value, not spelling)."""
    parts: list[Any] = [table]
    for name in sorted(key):
        ((type_, raw),) = key[name].items()
        parts.append((name, type_, Decimal(raw) if type_ == "N" else raw))
    return tuple(parts)


class Truth:
    """The table(s) and their single ordered stream. Thread-safe: readers run in threads."""

    def __init__(
        self,
        schemas: Mapping[str, Sequence[str]],
        sequences: Iterator[int],
        view: str = "NEW_AND_OLD_IMAGES",
        prefix: str = "",
        *,
        table_views: Mapping[str, str] | None = None,
        clock_skew_ms: float = 0.0,
    ) -> None:
        """``view``: every table's stream view type unless ``table_views`` names the table's own.

        ``clock_skew_ms``: how far DynamoDB's clock (the records' creation times) runs
        ahead of Redis's (the fills' stamps); negative: behind.
        """
        self.clock_skew_ms = clock_skew_ms
        self.table_views = {**dict.fromkeys(schemas, view), **(table_views or {})}
        for table, table_view in self.table_views.items():
            if table_view not in VIEWS:
                raise ValueError(f"stream view type {table_view!r} of table {table!r} is not one of {VIEWS}")
        self.schemas = {t: tuple(names) for t, names in schemas.items()}
        self.view = view
        self.prefix = prefix
        self.items: dict[tuple[Any, ...], History] = {}
        self.by_cache_key: dict[str, History] = {}
        self.records: list[dict[str, Any]] = []
        self.record_states: list[tuple[str, int]] = []  # per record: (cache key, state index)
        self._sequences = sequences
        self._revision = 0
        self._lock = threading.Lock()

    def history(self, table: str, key: Mapping[str, Typed]) -> History:
        ident = identity(table, key)
        found = self.items.get(ident)
        if found is None:
            ck = cache_key(table, key, self.schemas[table], self.prefix)
            found = self.items[ident] = History(table, dict(key), ck)
            self.by_cache_key[ck] = found
        return found

    def write(self, table: str, key: Mapping[str, Typed], operation: str) -> dict[str, Any] | None:
        """Apply one write; return its stream record (None: a delete of nothing emits none)."""
        with self._lock:
            h = self.history(table, key)
            before = h.states[-1].image
            if operation in ("REMOVE", "TTL"):
                return None if before is None else self._append(h, key, "REMOVE", (None, before), operation)
            self._revision += 1
            image = {
                **key,
                "rev": {"N": str(self._revision)},
                "note": {"S": f"r{self._revision}-{operation}"},
            }
            event = "INSERT" if before is None else "MODIFY"
            return self._append(h, key, event, (image, before), operation)

    def _append(
        self, h: History, key: Mapping[str, Typed], event: str, images: tuple[Typed | None, ...], op: str
    ) -> dict[str, Any]:
        new, old = images
        seq = next(self._sequences)
        # The write's wall time, as DynamoDB stamps ApproximateCreationDateTime (the same
        # machine clock as Redis TIME in the tests, moved by the skew): apply.lua compares it
        # with fills' stamps, allowing FILL_CLOCK_MARGIN_MS between the two clocks.
        record = events.record(
            h.table,
            event,
            key,
            seq,
            new=new,
            old=old,
            view=self.table_views[h.table],
            ttl_expiry=(op == "TTL"),
            created=time.time() + self.clock_skew_ms / 1000,
        )
        h.states.append(State(seq, new))
        self.records.append(record)
        self.record_states.append((h.cache_key, h.latest))
        return record

    def get(self, table: str, key: Typed) -> Typed | None:
        """``streamcache.read.dynamodb.Table``: the item now, in stream form (a consistent GetItem)."""
        with self._lock:
            h = self.items.get(identity(table, key))
            image = None if h is None else h.states[-1].image
            return None if image is None else dict(image)

    def candidates(self, cache_key_: str, value: bytes | None) -> list[int] | None:
        """Indexes of the states a cached value shows; None when it shows none (miss).

        A found item names its state by ``rev``; "not found" could be any state in
        which the item did not exist. Raises ``AssertionError`` for content that
        matches no state at all (corruption, or an image served for the wrong item).
        """
        if value is None:
            return None
        e = entry.decode(value)
        if not e.is_answer:
            return None
        h = self.by_cache_key[cache_key_]
        item = e.item()
        if item is None:
            return h.absent_indexes()
        return [state_of_item(h, item)]


def state_of_item(h: History, item: Typed) -> int:
    for index, state in enumerate(h.states):
        if state.image == item:
            return index
    raise AssertionError(f"{h.cache_key}: cached item rev {item.get('rev')} is no state of this item")


def sequences(start: int, steps: Iterator[int]) -> Iterator[int]:
    """Increasing sequence numbers from ``start`` with the given gaps (each at least 1)."""
    current = start
    for step in steps:
        yield current
        current += max(1, step)
