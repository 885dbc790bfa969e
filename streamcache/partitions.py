"""Query-cache partitions: which partition markers a stream record touches. Pure.

A cached ``Query`` result is served only while its partition's marker is the
one it was filled under. The invalidator moves a marker forward (versioned
like items: an older record never moves it back) for every partition a
record's item was in or enters:

- the base table's partition (the record's hash key value);
- for every index, the partition of the old image and of the new image (an
  item whose index key changes leaves one index partition and enters another;
  an image without the index's partition attribute is not in that index).

A marker and the results filled under it share a Redis hash slot (the
partition in ``{...}``), so a fill's check is one single-slot script on a
cluster. Table names cannot contain ``{``, so no marker or result key can
equal an item's cache key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from streamcache import entry
from streamcache.errors import KeyValueError
from streamcache.keys import encode_component, esc
from streamcache.records import Command, created_ms

BASE = ""  # the index name of the base table's partitions
MARKER_SUFFIX = "q"


@dataclass(frozen=True)
class TableIndexes:
    """What the query cache needs to know of one table (from DescribeTable)."""

    hash_name: str
    range_name: str | None = None
    # index name -> (partition attribute, sort attribute or None)
    indexes: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    global_indexes: frozenset[str] = frozenset()
    stream_view: str | None = None  # NEW_AND_OLD_IMAGES, NEW_IMAGE, ...

    def partition_attribute(self, index: str) -> str:
        return self.hash_name if index == BASE else self.indexes[index][0]

    @property
    def images_complete(self) -> bool:
        """Index partitions can be followed only when records carry both images."""
        return self.stream_view == "NEW_AND_OLD_IMAGES"


def marker_key(prefix: str, table: str, index: str, value: Mapping[str, Any]) -> str:
    """The marker of one partition: ``prefix{table/index/value}q``."""
    return f"{prefix}{{{esc(table)}/{esc(index)}/{encode_component('partition', value)}}}{MARKER_SUFFIX}"


def result_key(marker: str, digest: str) -> str:
    """A cached query page of the partition ``marker`` names (same hash slot)."""
    return f"{marker}:{digest}"


def record_markers(record: Mapping[str, Any], table: str, layout: TableIndexes, prefix: str) -> list[str]:
    """Every partition marker ``record`` moves, base table first; duplicates removed."""
    dynamodb = record.get("dynamodb") or {}
    markers: list[str] = []
    keys = dynamodb.get("Keys") or {}
    _add(markers, prefix, table, BASE, keys.get(layout.hash_name))
    if layout.indexes:
        images = [i for i in (dynamodb.get("OldImage"), dynamodb.get("NewImage")) if isinstance(i, dict)]
        for index, (attribute, _) in layout.indexes.items():
            for image in images:
                _add(markers, prefix, table, index, image.get(attribute))
    return markers


def _add(markers: list[str], prefix: str, table: str, index: str, value: object) -> None:
    if not isinstance(value, dict) or len(value) != 1:
        return  # not in this index (sparse), or no key: nothing to move
    ((type_, raw),) = value.items()
    if not isinstance(raw, str):
        return  # not a key value DynamoDB would have indexed (S, N and B are strings here)
    key = _marker_of(prefix, table, index, type_, raw)
    if key is not None and key not in markers:
        markers.append(key)


@lru_cache(maxsize=65_536)  # a batch touches few partitions, many times: encode each once
def _marker_of(prefix: str, table: str, index: str, type_: str, raw: str) -> str | None:
    try:
        return marker_key(prefix, table, index, {type_: raw})
    except KeyValueError:
        return None  # not a valid key value: DynamoDB would not have indexed it


def layout_from_description(description: Mapping[str, Any]) -> TableIndexes:
    """Parse a DescribeTable ``Table``."""
    hash_name, range_name = _key_pair(description["KeySchema"])
    indexes: dict[str, tuple[str, str | None]] = {}
    global_indexes = set()
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in description.get(kind) or ():
            indexes[index["IndexName"]] = _key_pair(index["KeySchema"])
            if kind == "GlobalSecondaryIndexes":
                global_indexes.add(index["IndexName"])
    stream = description.get("StreamSpecification") or {}
    view = stream.get("StreamViewType") if stream.get("StreamEnabled") else None
    return TableIndexes(hash_name, range_name, indexes, frozenset(global_indexes), view)


def _key_pair(schema: list[Mapping[str, str]]) -> tuple[str, str | None]:
    hash_name = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
    range_name = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
    return hash_name, range_name


def marker_commands(
    records: Sequence[Mapping[str, Any]], markers: Sequence[Sequence[str]]
) -> dict[str, Command]:
    """The newest record's marker write per partition (``markers[i]``: record i's markers).

    ``records`` are valid stream records (``batch.records_of`` checked their SequenceNumbers).
    """
    newest: dict[str, tuple[str, int]] = {}
    for index, keys in enumerate(markers):
        if not keys:
            continue
        version = records[index]["dynamodb"]["SequenceNumber"].zfill(entry.VERSION_DIGITS)
        for key in keys:
            known = newest.get(key)
            if known is None or version >= known[0]:
                newest[key] = (version, index)
    return {
        key: Command(key, entry.MARKER, version, b"", "partition", created_ms(records[index]))
        for key, (version, index) in newest.items()
    }
