"""Which query-cache partition markers a stream record moves, and the keys they live at. Pure."""

from __future__ import annotations

from typing import Any

from redis.crc import key_slot

from streamcache import entry
from streamcache.keys import cache_key
from streamcache.local import events
from streamcache.partitions import (
    BASE,
    TableIndexes,
    layout_from_description,
    marker_commands,
    marker_key,
    record_markers,
    result_key,
)

LAYOUT = TableIndexes(
    "pk",
    "sk",
    indexes={"byStatus": ("status", "ts"), "bySk": ("pk", "other")},
    global_indexes=frozenset({"byStatus"}),
    stream_view="NEW_AND_OLD_IMAGES",
)
KEYS = {"pk": {"S": "u1"}, "sk": {"N": "1"}}


def image(status: str | None, **extra: Any) -> dict[str, Any]:
    item = {**KEYS, **extra}
    if status is not None:
        item["status"] = {"S": status}
    return item


def markers(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    record = events.record("orders", "MODIFY", KEYS, 7, new=new, old=old)
    return record_markers(record, "orders", LAYOUT, "")


def test_an_item_moving_between_index_partitions_moves_both_markers() -> None:
    found = markers(image("open"), image("shipped"))
    assert found == [
        marker_key("", "orders", BASE, {"S": "u1"}),
        marker_key("", "orders", "byStatus", {"S": "open"}),
        marker_key("", "orders", "byStatus", {"S": "shipped"}),
        marker_key("", "orders", "bySk", {"S": "u1"}),
    ]


def test_an_item_outside_a_sparse_index_moves_no_marker_of_it() -> None:
    found = markers(image(None), image(None))
    assert marker_key("", "orders", "byStatus", {"S": "open"}) not in found
    assert all("/byStatus/" not in key for key in found)
    assert marker_key("", "orders", BASE, {"S": "u1"}) in found


def test_a_keys_only_record_moves_the_base_partition_only() -> None:
    assert markers(None, None) == [marker_key("", "orders", BASE, {"S": "u1"})]


def test_a_marker_and_its_results_share_a_hash_slot_even_with_braces_in_the_value() -> None:
    for value in ("u1", "a}b", "{x}", "}"):
        marker = marker_key("pre:", "orders", "byStatus", {"S": value})
        assert key_slot(marker.encode()) == key_slot(result_key(marker, "abc123").encode())


def test_partitions_of_different_values_tables_or_indexes_have_different_markers() -> None:
    keys = {
        marker_key("", "orders", BASE, {"S": "a-b"}),
        marker_key("", "orders", BASE, {"S": "a"}),
        marker_key("", "orders-a", BASE, {"S": "b"}),
        marker_key("", "orders", "byStatus", {"S": "a-b"}),
        marker_key("", "orders", BASE, {"N": "1"}),
        marker_key("", "orders", BASE, {"N": "1.0"}),
    }
    assert len(keys) == 5  # 1 and 1.0 are the same DynamoDB number


def test_no_marker_is_ever_an_item_cache_key() -> None:
    marker = marker_key("", "orders", BASE, {"S": "u1"})
    item = cache_key("orders", KEYS, ("pk", "sk"))
    assert marker != item
    assert marker.startswith("{") and not item.startswith("{")  # table names have no "{"


def test_the_newest_record_per_partition_writes_its_marker() -> None:
    older = events.record("orders", "MODIFY", KEYS, 9, new=image("open"), old=image("open"))
    newer = events.record("orders", "MODIFY", KEYS, 12, new=image("open"), old=image("open"))
    moved = [record_markers(r, "orders", LAYOUT, "") for r in (newer, older)]
    commands = marker_commands([newer, older], moved)
    base = marker_key("", "orders", BASE, {"S": "u1"})
    assert commands[base].version == entry.pad_version("12")
    assert commands[base].kind == entry.MARKER
    assert set(commands) == set(moved[0])


def test_layout_from_describe_table() -> None:
    description = {
        "KeySchema": [
            {"AttributeName": "sk", "KeyType": "RANGE"},
            {"AttributeName": "pk", "KeyType": "HASH"},
        ],
        "GlobalSecondaryIndexes": [
            {"IndexName": "g", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}]}
        ],
        "LocalSecondaryIndexes": [
            {
                "IndexName": "l",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "ts", "KeyType": "RANGE"},
                ],
            }
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }
    layout = layout_from_description(description)
    assert (layout.hash_name, layout.range_name) == ("pk", "sk")
    assert layout.indexes == {"g": ("status", None), "l": ("pk", "ts")}
    assert layout.global_indexes == frozenset({"g"})
    assert layout.images_complete
    assert not layout_from_description({**description, "StreamSpecification": None}).images_complete
