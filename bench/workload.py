"""Stream records shaped like a real table's: 1,000 keys, ~1 KB items, mixed events.

Built with ``streamcache.local.events`` (the shapes the tests use), then round-
tripped through JSON so every batch is made of fresh objects, as Lambda's
runtime hands them over. Sequence numbers only grow, across the whole run, so
every batch is newer than what the cache holds and every write applies.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from typing import Any

import orjson

from streamcache.local import events

TABLE = "orders"
KEY_SCHEMA = {TABLE: ["pk", "sk"]}
DISTINCT_KEYS = 1000
ITEM_BYTES = 1000
# Event mix: most writes carry a new image; one in ten is a delete.
MIX = (("INSERT", 0.3), ("MODIFY", 0.6), ("REMOVE", 0.1))


def key_schema_json() -> str:
    return json.dumps(KEY_SCHEMA)


def typed_keys(index: int) -> dict[str, Any]:
    return {"pk": {"S": f"u{index % 97:03d}"}, "sk": {"N": str(index)}}


def item(index: int, revision: int) -> dict[str, Any]:
    """A typed item of about ``ITEM_BYTES`` bytes of JSON."""
    base = events.item(
        typed_keys(index),
        status={"S": ("pending", "paid", "shipped")[revision % 3]},
        total={"N": f"{index * 7 + revision}.{revision % 100:02d}"},
        qty={"N": str(revision % 9 + 1)},
        tags={"SS": ["gift", "priority", f"r{revision}"]},
        active={"BOOL": revision % 2 == 0},
        address={"M": {"street": {"S": f"{index} Long Road"}, "city": {"S": "Springfield"}}},
    )
    padding = ITEM_BYTES - len(orjson.dumps(base)) - len(',"note":{"S":""}')
    base["note"] = {"S": "x" * max(0, padding)}
    return base


class Workload:
    """Deterministic batches over ``keys`` distinct keys; sequence numbers never repeat."""

    def __init__(self, keys: int = DISTINCT_KEYS, seed: int = 7) -> None:
        self._keys = keys
        self._random = random.Random(seed)
        self._sequences: Iterator[int] = iter(events.sequence_numbers())
        self._revision = itertools.count(1)

    def records(self, size: int, distinct: bool = False) -> list[dict[str, Any]]:
        """``size`` records of fresh JSON-parsed objects; ``distinct``: one key per record."""
        names = [name for name, _ in MIX]
        weights = [weight for _, weight in MIX]
        batch = []
        for n in range(size):
            index = n if distinct else self._random.randrange(self._keys)
            name = self._random.choices(names, weights)[0]
            batch.append(self._record(index, name))
        fresh: list[dict[str, Any]] = orjson.loads(orjson.dumps(batch))
        return fresh

    def restamp(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The same records as an event, with new, higher sequence numbers: every write applies."""
        for record in records:
            record["dynamodb"]["SequenceNumber"] = str(next(self._sequences))
        return events.event(records)

    def _record(self, index: int, name: str) -> dict[str, Any]:
        revision = next(self._revision)
        keys = typed_keys(index)
        new = None if name == "REMOVE" else item(index, revision)
        old = None if name == "INSERT" else item(index, revision - 1)
        return events.record(TABLE, name, keys, next(self._sequences), new=new, old=old)


def event_of_bytes(workload: Workload, target_bytes: int) -> bytes:
    """An event whose JSON is just under ``target_bytes`` (Lambda's 6 MB payload limit)."""
    overhead = len(orjson.dumps(events.event([])))
    records: list[dict[str, Any]] = []
    total = overhead
    while True:
        record = workload.records(1)[0]
        size = len(orjson.dumps(record)) + 1  # + the comma between records
        if total + size > target_bytes:
            break
        records.append(record)
        total += size
    return orjson.dumps(events.event(records))
