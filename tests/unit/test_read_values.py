"""Stream form <-> boto3 resource values: exactly boto3's types, and keys only the cache can answer."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer
from hypothesis import given
from hypothesis import strategies as st

from streamcache.codec import item_from_boto3
from streamcache.read.values import item_from_python, item_to_python, key_from_python
from streamcache.schema import TableKeys

SCHEMA = TableKeys(("pk", "sk"), ("S", "N"))
BLOBS = TableKeys(("b",), ("B",))

texts = st.text(max_size=8)
blobs = st.binary(max_size=8)
scalars = st.one_of(
    texts.map(lambda s: {"S": s}),
    st.integers(-(10**37), 10**37).map(lambda n: {"N": str(n)}),
    blobs.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(texts, min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
    st.sets(st.integers(-999, 999), min_size=1, max_size=3).map(lambda s: {"NS": [str(n) for n in s]}),
    st.sets(blobs, min_size=1, max_size=3).map(lambda s: {"BS": sorted(s)}),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(texts, inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=8,
)
boto3_items = st.dictionaries(st.text(min_size=1, max_size=5), values, max_size=5)


def deserialized(item: dict[str, Any]) -> dict[str, Any]:
    return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}


@given(boto3_items)
def test_cached_items_read_back_exactly_as_boto3_deserialises_them(item: dict[str, Any]) -> None:
    ours = item_to_python(item_from_boto3(item))
    assert ours == deserialized(item)
    assert repr(ours) == repr(deserialized(item))  # same types all the way down (Binary, set, Decimal)


@given(boto3_items)
def test_python_items_go_to_stream_form_and_back_unchanged(item: dict[str, Any]) -> None:
    python = deserialized(item)
    assert item_to_python(item_from_python(python)) == python


def test_38_digit_and_tiny_numbers_stay_exact() -> None:
    item = {"n": {"N": "-12345678901234567890123456789012345678"}, "t": {"N": "-1E-130"}}
    assert item_to_python(item) == {
        "n": Decimal("-12345678901234567890123456789012345678"),
        "t": Decimal("-1E-130"),
    }


def test_binary_is_boto3_binary() -> None:
    assert item_to_python({"b": {"B": base64.b64encode(b"\x00").decode()}}) == {"b": Binary(b"\x00")}


@pytest.mark.parametrize(
    ("key", "typed"),
    [
        ({"pk": "a-b%", "sk": 42}, {"pk": {"S": "a-b%"}, "sk": {"N": "42"}}),
        ({"pk": "a", "sk": Decimal("1.50")}, {"pk": {"S": "a"}, "sk": {"N": "1.50"}}),
        ({"pk": "a", "sk": Decimal("-1E-130")}, {"pk": {"S": "a"}, "sk": {"N": "-1E-130"}}),
    ],
)
def test_keys_the_cache_can_answer(key: dict[str, Any], typed: dict[str, Any]) -> None:
    assert key_from_python(key, SCHEMA) == typed


@pytest.mark.parametrize(
    "key",
    [
        {"pk": "a", "sk": True},  # bool is an int to Python, not a number to DynamoDB
        {"pk": "a", "sk": 1.5},  # boto3 refuses floats
        {"pk": "a", "sk": "42"},
        {"pk": "a", "sk": Decimal("NaN")},
        {"pk": "a", "sk": Decimal("1" * 39)},
        {"pk": "a", "sk": Decimal("1E+126")},
        {"pk": "", "sk": 1},
        {"pk": "x" * 2049, "sk": 1},
        {"pk": "\ud800", "sk": 1},
        {"pk": "a"},
        {"pk": "a", "sk": 1, "x": 1},
        [("pk", "a")],
        None,
    ],
)
def test_keys_only_dynamodb_can_answer(key: Any) -> None:
    assert key_from_python(key, SCHEMA) is None


def test_binary_keys_are_base64_and_never_empty() -> None:
    assert key_from_python({"b": Binary(b"\x01")}, BLOBS) == {"b": {"B": "AQ=="}}
    assert key_from_python({"b": b"\x01"}, BLOBS) == {"b": {"B": "AQ=="}}
    assert key_from_python({"b": b""}, BLOBS) is None
    assert key_from_python({"b": "AQ=="}, BLOBS) is None
