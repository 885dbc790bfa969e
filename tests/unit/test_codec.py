"""Typed DynamoDB JSON <-> plain, and boto3 output -> stream form."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcache.codec import (
    AttributeValueError,
    item_from_boto3,
    item_to_plain,
    number_text,
    value_to_plain,
)

BIG = "12345678901234567890123456789012345678"  # 38 significant digits


def value_from_plain(value: Any) -> dict[str, Any]:
    """The inverse of ``value_to_plain`` for what plain JSON can say (no sets, no binary)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float)):
        return {"N": number_text(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, list):
        return {"L": [value_from_plain(v) for v in value]}
    return {"M": {str(k): value_from_plain(v) for k, v in value.items()}}


def test_plain_numbers_are_int_when_integral_else_float() -> None:
    assert value_to_plain({"N": "42"}) == 42
    assert value_to_plain({"N": "4.20"}) == 4.2
    assert value_to_plain({"N": "1e2"}) == 100
    assert value_to_plain({"N": BIG}) == int(BIG)  # exact, not via float


def test_plain_sets_are_sorted_lists() -> None:
    assert value_to_plain({"SS": ["b", "a", "c"]}) == ["a", "b", "c"]
    assert value_to_plain({"NS": ["10", "9", "-1.5"]}) == [-1.5, 9, 10]
    binaries = [base64.b64encode(b).decode() for b in (b"\xff", b"\x00\x01", b"\x00")]
    assert value_to_plain({"BS": binaries}) == ["AA==", "AAE=", "/w=="]  # by bytes, not text


def test_plain_nested_maps_lists_null_bool_binary() -> None:
    item = {
        "m": {"M": {"l": {"L": [{"S": "x"}, {"N": "1"}, {"NULL": True}, {"BOOL": False}]}}},
        "b": {"B": "AAE="},
    }
    assert item_to_plain(item) == {"m": {"l": ["x", 1, None, False]}, "b": "AAE="}


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(AttributeValueError, match="'Q'"):
        value_to_plain({"Q": "1"})
    with pytest.raises(AttributeValueError, match="one-key"):
        value_to_plain({"S": "a", "N": "1"})


def test_boto3_binary_becomes_base64_text_everywhere() -> None:
    item = {
        "b": {"B": b"\x00\x01"},
        "bs": {"BS": [b"\xff"]},
        "m": {"M": {"inner": {"B": b"\x02"}}},
        "l": {"L": [{"B": b"\x03"}, {"N": BIG}]},
        "s": {"S": "x"},
    }
    assert item_from_boto3(item) == {
        "b": {"B": "AAE="},
        "bs": {"BS": ["/w=="]},
        "m": {"M": {"inner": {"B": "Ag=="}}},
        "l": {"L": [{"B": "Aw=="}, {"N": BIG}]},
        "s": {"S": "x"},
    }


def test_number_text_keeps_exact_forms_and_rejects_nan() -> None:
    assert number_text(0.1) == "0.1"
    assert number_text(10**37) == "1" + "0" * 37
    assert number_text(Decimal("1.50")) == "1.50"
    with pytest.raises(AttributeValueError, match="NaN"):
        number_text(float("nan"))


def _in_dynamodb_range(f: float) -> bool:
    """A non-integral float DynamoDB can store (magnitude 1E-130 up to below 1E+126)."""
    return f != int(f) and 1e-130 <= abs(f) < 1e126


plain_json = st.recursive(
    st.none()
    | st.booleans()
    | st.text()
    | st.integers(min_value=-(10**37), max_value=10**37)
    | st.floats(allow_nan=False, allow_infinity=False, width=64).filter(_in_dynamodb_range),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(plain_json)
def test_plain_to_typed_and_back_is_identity(value: object) -> None:
    assert value_to_plain(value_from_plain(value)) == value


@given(st.dictionaries(st.text(min_size=1), st.binary(max_size=16), max_size=5))
def test_boto3_binary_round_trips_through_base64(values: dict[str, bytes]) -> None:
    stream = item_from_boto3({k: {"B": v} for k, v in values.items()})
    assert {k: base64.b64decode(v["B"]) for k, v in stream.items()} == values
