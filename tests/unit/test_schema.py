"""Key schemas: KEY_SCHEMA first, DescribeTable bounded, a disagreement refused loudly."""

from __future__ import annotations

import math

import pytest

from streamcache import aws
from streamcache.errors import KeySchemaMismatchError, RecordError, UnknownTableError
from streamcache.local import events
from streamcache.records import record_key
from streamcache.schema import (
    DESCRIBE_TIMEOUTS,
    DESCRIBE_TIMEOUTS_SHORT,
    KeySchemas,
    TableKeys,
    describe_with_boto3,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Describer:
    """DescribeTable stand-in: fails while ``failing``, else answers ``keys``."""

    def __init__(self, keys: TableKeys | None = None, failing: bool = False) -> None:
        self.keys = keys or TableKeys(("pk", "sk"), ("S", "N"))
        self.failing, self.calls = failing, 0

    def __call__(self, table: str) -> TableKeys:
        self.calls += 1
        if self.failing:
            raise ConnectionError("endpoint unreachable")
        return self.keys


def key_of(table: str, keys: dict, schemas: KeySchemas) -> str:
    return record_key(events.record(table, "INSERT", keys, 1), schemas, "")


def test_a_failed_describe_is_remembered_briefly_then_tried_again() -> None:
    clock, describe = Clock(), Describer(failing=True)
    schemas = KeySchemas({}, describe, failure_ttl_s=10.0, clock=clock)
    for _ in range(200):
        with pytest.raises(UnknownTableError, match=r"DescribeTable failed \(ConnectionError\)"):
            schemas.keys_of("orders")
    assert describe.calls == 1
    clock.now, describe.failing = 10.5, False
    assert schemas.keys_of("orders").names == ("pk", "sk")
    assert describe.calls == 2


def test_a_remembered_failure_is_a_fresh_exception_each_time() -> None:
    """Re-raising one instance would chain a longer traceback onto it on every call."""
    schemas = KeySchemas({}, Describer(failing=True), clock=Clock())
    raised = []
    for _ in range(3):
        with pytest.raises(UnknownTableError) as err:
            schemas.keys_of("orders")
        raised.append(err.value)
    assert len({id(e) for e in raised}) == 3 and raised[1].__traceback__ is not raised[0].__traceback__


def test_no_describe_starts_without_time_to_finish_and_that_is_not_remembered(monkeypatch) -> None:
    calls: list[str] = []

    class Client:
        def describe_table(self, TableName: str) -> dict:
            calls.append(TableName)
            return {
                "Table": {
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                }
            }

    budgets: list[aws.AwsTimeouts] = []

    def client(service: str, endpoint_url: str | None, timeouts: aws.AwsTimeouts) -> Client:
        budgets.append(timeouts)
        return Client()

    monkeypatch.setattr(aws, "client", client)
    schemas = KeySchemas({}, describe_with_boto3(), clock=Clock())
    too_short = Remaining(DESCRIBE_TIMEOUTS_SHORT.worst_s - 0.1)
    with aws.invocation(too_short), pytest.raises(UnknownTableError, match="not enough time left"):
        schemas.keys_of("users")
    assert calls == []
    with aws.invocation(Remaining(DESCRIBE_TIMEOUTS_SHORT.worst_s + 0.1)):  # a short budget that fits
        assert schemas.keys_of("users").names == ("id",)
    assert calls == ["users"] and budgets == [DESCRIBE_TIMEOUTS_SHORT]
    assert KeySchemas({}, describe_with_boto3()).keys_of("users").names == ("id",)  # no deadline: full
    assert budgets[-1] == DESCRIBE_TIMEOUTS and DESCRIBE_TIMEOUTS.worst_s > DESCRIBE_TIMEOUTS_SHORT.worst_s


class Remaining:
    def __init__(self, seconds: float) -> None:
        self.ms = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


def test_time_left_is_unbounded_outside_an_invocation() -> None:
    assert aws.time_left() == math.inf
    with aws.invocation(Remaining(3)):
        assert 2.9 <= aws.time_left() <= 3.0
    with aws.invocation(None):  # a test or a script passing no context
        assert aws.time_left() == math.inf


@pytest.mark.parametrize(
    ("configured", "table_keys"),
    [(("sk", "pk"), ("pk", "sk")), (("pk",), ("pk", "sk")), (("pk", "sk"), ("pk",))],
    ids=["swapped", "range-missing", "range-extra"],
)
def test_typed_keys_refuse_a_key_schema_that_disagrees_with_the_table(configured, table_keys) -> None:
    describe = Describer(TableKeys(table_keys, ("S",) * len(table_keys)))
    schemas = KeySchemas({"orders": configured}, describe, clock=Clock())
    for _ in range(3):
        with pytest.raises(KeySchemaMismatchError) as err:
            schemas.typed_keys_of("orders")
        expected = f"is {list(configured)} (hash first) but the table has key attributes {list(table_keys)}"
        assert expected in str(err.value)
        assert err.value.table == "orders"
    assert describe.calls == 1  # a table's key schema never changes: remembered for good


def test_a_record_with_one_key_attribute_needs_no_key_schema() -> None:
    describe = Describer(failing=True)
    schemas = KeySchemas({}, describe)
    assert key_of("users", {"userId": {"S": "ann"}}, schemas) == "users-ann"
    assert key_of("users", {"userId": {"S": "bob"}}, KeySchemas({}, None)) == "users-bob"
    assert describe.calls == 0


def test_a_missing_table_error_gives_the_exact_key_schema_to_add() -> None:
    keys = {"userId": {"S": "ann"}, "at": {"N": "1"}}
    with pytest.raises(RecordError) as err:
        key_of("users", keys, KeySchemas({}, None))
    assert """KEY_SCHEMA='{"users": ["at", "userId"]}'""" in str(err.value)
    assert "swap them if 'userId' is the hash" in str(err.value)


@pytest.mark.parametrize(
    ("configured", "keys"),
    [
        (("pk", "sk"), {"pk": {"S": "a"}}),  # KEY_SCHEMA has a range the table lacks
        (("pk",), {"pk": {"S": "a"}, "sk": {"N": "1"}}),  # the range is missing from KEY_SCHEMA
        (("pk", "sk"), {"pk": {"S": "a"}, "other": {"N": "1"}}),
        (("id",), {"pk": {"S": "a"}}),  # a configured table: one attribute is checked, not guessed
    ],
)
def test_a_record_whose_keys_disagree_with_key_schema_is_unusable(configured, keys) -> None:
    with pytest.raises(RecordError, match=r"KEY_SCHEMA for table 'orders' is .* but the record's Keys"):
        key_of("orders", keys, KeySchemas({"orders": configured}, None))
