"""Request validation and typing of key values from the table's key schema."""

from __future__ import annotations

import pytest

from reader.request import RequestError, check_format, check_table, key_from_json, key_from_query
from streamcache.schema import TableKeys

ORDERS = TableKeys(("pk", "sk"), ("S", "N"))
BLOBS = TableKeys(("b",), ("B",))


def refused(call, *args) -> RequestError:
    with pytest.raises(RequestError) as caught:
        call(*args)
    return caught.value


def test_plain_json_key_values_are_typed() -> None:
    assert key_from_json({"pk": "u1", "sk": 42}, ORDERS) == {"pk": {"S": "u1"}, "sk": {"N": "42"}}
    assert key_from_json({"pk": "u1", "sk": 1.5}, ORDERS)["sk"] == {"N": "1.5"}


def test_typed_values_keep_38_digits_and_are_canonical() -> None:
    big = "1234567890123456789012345678901234567.8"
    assert key_from_json({"pk": {"S": "u1"}, "sk": {"N": big}}, ORDERS)["sk"] == {"N": big}
    assert key_from_json({"pk": "u1", "sk": {"N": "4.20"}}, ORDERS)["sk"] == {"N": "4.2"}


def test_binary_key_from_base64_text_or_typed() -> None:
    assert key_from_json({"b": "AAE="}, BLOBS) == {"b": {"B": "AAE="}}
    assert key_from_json({"b": {"B": "AAE="}}, BLOBS) == {"b": {"B": "AAE="}}
    assert "base64" in refused(key_from_json, {"b": "not base64!"}, BLOBS).message


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ({"pk": "u1"}, "'sk' is missing"),
        ({"pk": "u1", "sk": 1, "x": 2}, "unexpected key attribute 'x'"),
        ({"pk": "u1", "sk": "42"}, "'sk' must be a number (N), not 'S'"),
        ({"pk": 7, "sk": 42}, "'pk' must be a string (S), not 'N'"),
        ({"pk": "u1", "sk": True}, "'sk' must be a number"),
        ({"pk": "u1", "sk": {"N": "abc"}}, "'sk': value is not a number"),
        ({"pk": "u1", "sk": {"N": "1" * 39}}, "'sk': value has more than 38"),
        ({"pk": "", "sk": 1}, "'pk': value is empty"),
        ({"pk": "é" * 1025, "sk": 1}, "'pk': value is 2050 bytes; DynamoDB allows at most 2048"),
        ({"pk": "u1", "sk": float("inf")}, "'sk': NaN and infinities"),
    ],
)
def test_bad_direct_keys_are_400_naming_the_attribute(key: dict, names: str) -> None:
    error = refused(key_from_json, key, ORDERS)
    assert error.status == 400
    assert names in error.message


def test_range_key_limit_is_1024_bytes() -> None:
    schema = TableKeys(("pk", "sk"), ("S", "S"))
    assert key_from_json({"pk": "a" * 2048, "sk": "b" * 1024}, schema)
    assert (
        "'sk': value is 1025 bytes" in refused(key_from_json, {"pk": "a", "sk": "b" * 1025}, schema).message
    )


def test_binary_size_counts_decoded_bytes() -> None:
    import base64

    ok = base64.b64encode(b"x" * 2048).decode()
    too_big = base64.b64encode(b"x" * 2049).decode()
    assert key_from_json({"b": ok}, BLOBS)
    assert "2049 bytes" in refused(key_from_json, {"b": too_big}, BLOBS).message


def test_query_values_are_typed_from_the_schema() -> None:
    key, fmt = key_from_query([("pk", "u1"), ("sk", "042.50")], ORDERS)
    assert key == {"pk": {"S": "u1"}, "sk": {"N": "42.5"}}
    assert fmt == "plain"
    assert key_from_query([("sk", "1"), ("pk", "a"), ("format", "dynamodb")], ORDERS)[1] == "dynamodb"


def test_a_key_attribute_named_format_wins_over_the_format_parameter() -> None:
    schema = TableKeys(("format",), ("S",))
    assert key_from_query([("format", "dynamodb")], schema) == ({"format": {"S": "dynamodb"}}, "plain")


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ([("pk", "u1")], "'sk' is missing"),
        ([("pk", "u1"), ("sk", "abc")], "'sk': value is not a number"),
        ([("pk", "u1"), ("sk", "1"), ("x", "y")], "unexpected query parameter 'x'"),
        ([("pk", "u1"), ("pk", "u2"), ("sk", "1")], "'pk' is given more than once"),
        ([("pk", "u1"), ("sk", "1"), ("format", "xml")], "format 'xml'"),
        ([("pk", ""), ("sk", "1")], "'pk': value is empty"),
    ],
)
def test_bad_query_keys_are_400_naming_the_attribute(params: list, names: str) -> None:
    error = refused(key_from_query, params, ORDERS)
    assert error.status == 400
    assert names in error.message


def test_table_not_allowed_is_403_and_missing_table_400() -> None:
    assert check_table("orders", frozenset({"orders"})) == "orders"
    assert refused(check_table, "secrets", frozenset({"orders"})).status == 403
    assert refused(check_table, None, frozenset({"orders"})).status == 400


def test_format_must_be_plain_or_dynamodb() -> None:
    assert check_format("dynamodb") == "dynamodb"
    assert refused(check_format, "xml").status == 400
