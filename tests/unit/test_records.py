"""Stream record -> cache command, for every record kind and stream view type."""

from __future__ import annotations

import pytest

from streamcache import entry
from streamcache.errors import MalformedEventError, RecordError
from streamcache.local import events
from streamcache.records import MAX_PAYLOAD_BYTES, sequence_number, to_command
from streamcache.schema import KeySchemas

SCHEMAS = KeySchemas({"orders": ("pk", "sk")}, describe=None)
KEYS = {"pk": {"S": "u-1"}, "sk": {"N": "42"}}
ITEM = events.item(KEYS, total={"N": "9.50"})


def command(event: str, **kwargs: object):
    return to_command(events.record("orders", event, KEYS, 1100000000017454423009, **kwargs), SCHEMAS, "")


@pytest.mark.parametrize("event", ["INSERT", "MODIFY"])
@pytest.mark.parametrize("view", ["NEW_IMAGE", "NEW_AND_OLD_IMAGES"])
def test_write_with_new_image_serves_the_image(event: str, view: str) -> None:
    c = command(event, new=ITEM, old=ITEM, view=view)
    assert (c.key, c.kind, c.reason) == ("orders-u%2D1-42", entry.ITEM, "image")
    assert entry.Entry(c.kind, c.version, c.payload).item() == ITEM
    assert c.version == "0" * 18 + "1100000000017454423009"


@pytest.mark.parametrize("view", ["KEYS_ONLY", "OLD_IMAGE"])
def test_write_without_new_image_invalidates(view: str) -> None:
    c = command("MODIFY", new=ITEM, old=ITEM, view=view)
    assert (c.kind, c.payload, c.reason) == (entry.INVALIDATED, b"", "keys-only")


def test_remove_leaves_a_tombstone() -> None:
    c = command("REMOVE", old=ITEM)
    assert (c.kind, c.reason) == (entry.TOMBSTONE, "remove")


def test_ttl_expiry_is_a_tombstone_marked_ttl() -> None:
    c = command("REMOVE", old=ITEM, ttl_expiry=True)
    assert (c.kind, c.reason) == (entry.TOMBSTONE, "ttl")


def test_oversized_image_invalidates_instead() -> None:
    big = events.item(KEYS, blob={"S": "x" * (MAX_PAYLOAD_BYTES + 1)})
    c = command("MODIFY", new=big)
    assert (c.kind, c.reason) == (entry.INVALIDATED, "too-large")


@pytest.mark.parametrize("image", [[], "text", {}])
def test_malformed_image_invalidates_instead(image: object) -> None:
    c = command("MODIFY", new=image)  # type: ignore[arg-type]
    assert (c.kind, c.reason) == (entry.INVALIDATED, "malformed-image")


def test_unknown_event_name_invalidates_instead() -> None:
    c = command("RENAME", new=ITEM)
    assert (c.kind, c.reason) == (entry.INVALIDATED, "unknown-event")


def test_table_missing_from_schema_is_a_record_error() -> None:
    record = events.record("other", "INSERT", KEYS, 1, new=ITEM)
    with pytest.raises(RecordError, match="'other' is not in KEY_SCHEMA"):
        to_command(record, SCHEMAS, "")


def test_missing_key_attribute_is_a_record_error() -> None:
    record = events.record("orders", "INSERT", {"pk": {"S": "a"}}, 1, new=ITEM)
    expected = r"is \['pk', 'sk'\] \(hash first\) but the record's Keys has attributes \['pk'\]"
    with pytest.raises(RecordError, match=expected):
        to_command(record, SCHEMAS, "")


@pytest.mark.parametrize("record", [None, {}, {"dynamodb": {}}, {"dynamodb": {"SequenceNumber": 5}}])
def test_record_without_sequence_number_is_malformed(record: object) -> None:
    with pytest.raises(MalformedEventError, match="SequenceNumber"):
        sequence_number(record)


def test_sequence_number_longer_than_40_digits_is_malformed() -> None:
    record = events.record("orders", "INSERT", KEYS, "1" * 41, new=ITEM)
    with pytest.raises(MalformedEventError, match="at most 40 digits"):
        to_command(record, SCHEMAS, "")


def test_describe_is_used_once_for_unlisted_tables() -> None:
    calls: list[str] = []

    def describe(table: str):
        calls.append(table)
        from streamcache.schema import TableKeys

        return TableKeys(("pk", "sk"), ("S", "N"))

    schemas = KeySchemas({}, describe)
    for seq in (1, 2, 3):
        to_command(events.record("orders", "INSERT", KEYS, seq, new=ITEM), schemas, "")
    assert calls == ["orders"]


@pytest.mark.parametrize(
    ("created", "ms"),
    [
        (1764000000, 1764000000000),  # AWS: whole seconds
        (1764000000.1239, 1764000000123),  # fractions round down, never later than the write
        (1764000000123, 1764000000123),  # moto: milliseconds
        (float("nan"), 0),
        (-5, 0),
    ],
)
def test_command_carries_the_records_creation_ms(created: float, ms: int) -> None:
    assert command("INSERT", new=ITEM, created=created).created_ms == ms


def test_command_without_creation_time_carries_zero() -> None:
    record = events.record("orders", "INSERT", KEYS, 1100000000017454423009, new=ITEM)
    del record["dynamodb"]["ApproximateCreationDateTime"]
    assert to_command(record, SCHEMAS, "").created_ms == 0


@pytest.mark.parametrize("created", [float("inf"), float("-inf"), float("nan"), 10**400, -(10**400)])
def test_a_creation_time_that_is_not_a_finite_number_is_unknown(created: float) -> None:
    from streamcache import lag

    record = events.record("orders", "INSERT", KEYS, 1100000000017454423009, new=ITEM, created=created)
    assert lag.creation_seconds(record) is None
    assert lag.lags_ms([record], 1764000000.0) == []
    assert to_command(record, SCHEMAS, "").created_ms == 0
