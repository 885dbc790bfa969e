"""Batch planning and the partial batch response (pure)."""

from __future__ import annotations

import pytest

from streamcache.batch import batch_response, first_unapplied, plan_batch, records_of
from streamcache.errors import MalformedEventError
from streamcache.local import events
from streamcache.records import command_for, record_key
from streamcache.schema import KeySchemas

SCHEMAS = KeySchemas({"t": ("id",)}, describe=None)


def rec(key: str, seq: int, value: str = "v") -> dict:
    keys = {"id": {"S": key}}
    return events.record("t", "MODIFY", keys, seq, new=events.item(keys, v={"S": value}))


def plan(records: list[dict]):
    return plan_batch(records, lambda r: record_key(r, SCHEMAS, ""), command_for)


def test_newest_record_per_key_wins() -> None:
    p = plan([rec("a", 10, "old"), rec("b", 20), rec("a", 30, "new")])
    assert set(p.commands) == {"t-a", "t-b"}
    assert p.commands["t-a"].version.endswith("30")


def test_dedup_keeps_higher_version_even_out_of_order() -> None:
    p = plan([rec("a", 30, "new"), rec("a", 10, "old")])
    assert p.commands["t-a"].version.endswith("30")


def test_only_the_newest_record_per_key_is_built() -> None:
    built: list[str] = []

    def build(record: dict, key: str):
        built.append(record["dynamodb"]["SequenceNumber"])
        return command_for(record, key)

    plan_batch(
        [rec("a", 10), rec("a", 20), rec("b", 15), rec("a", 30)], lambda r: record_key(r, SCHEMAS, ""), build
    )
    assert sorted(built) == ["15", "30"]


def test_unusable_record_is_listed_and_keyless() -> None:
    bad = events.record("unknown", "INSERT", {"id": {"S": "x"}, "at": {"N": "1"}}, 20)
    p = plan([rec("a", 10), bad, rec("b", 30)])
    assert p.record_keys == ["t-a", None, "t-b"]
    assert p.unusable[0][0] == 1
    assert first_unapplied(p, set()) == 1


def test_failed_key_fails_its_earliest_record() -> None:
    p = plan([rec("a", 10), rec("b", 20), rec("a", 30)])
    assert first_unapplied(p, {"t-a"}) == 0
    assert first_unapplied(p, {"t-b"}) == 1
    assert first_unapplied(p, set()) is None


def test_response_lists_first_failure_and_everything_after() -> None:
    response = batch_response(["1", "2", "3", "4"], 2)
    assert response == {"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "4"}]}
    assert batch_response(["1"], None) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "event is a list"),
        ({}, "no Records list"),
        ({"Records": "x"}, "no Records list"),
        ({"Records": [{"dynamodb": {}}]}, "SequenceNumber"),
    ],
)
def test_malformed_event_fails_whole_batch(event: object, message: str) -> None:
    with pytest.raises(MalformedEventError, match=message):
        records_of(event)
