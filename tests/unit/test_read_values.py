"""Stream form <-> boto3 resource values: exactly boto3's types, and keys only the cache can answer."""

from __future__ import annotations

import base64
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcache.codec import item_from_boto3, value_from_boto3
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


# -- item_from_python answers exactly what boto3's TypeSerializer does ---------------


def boto3_serialized(item: dict[str, Any]) -> dict[str, Any]:
    """The reference: boto3's TypeSerializer, binary then as base64 text (the cache's form)."""
    return {k: value_from_boto3(TypeSerializer().serialize(v)) for k, v in item.items()}


class Text(str):
    pass


class Number(Decimal):
    pass


numbers = st.one_of(
    st.integers(-(10**40), 10**40),  # past 38 digits boto3 raises; so must we, the same error
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(places=3, min_value=-(10**34), max_value=10**34),
    st.sampled_from(
        [
            Decimal("12345678901234567890123456789012345678"),
            Decimal("-1E-130"),
            Decimal("9.99E+125"),
            Decimal("1.50"),
            Decimal("-0"),
            Decimal("0E+5"),
            Decimal("-Infinity"),
            Decimal("sNaN"),
            0,
            -1,
        ]
    ),
)
python_scalars = st.one_of(
    st.text(max_size=6),
    numbers,
    st.booleans(),
    st.none(),
    st.binary(max_size=6).map(Binary),
    st.binary(max_size=6),
    st.binary(max_size=6).map(bytearray),
    st.floats(allow_nan=False),  # boto3 refuses floats with a TypeError
    st.text(max_size=3).map(Text),
    numbers.filter(lambda n: isinstance(n, Decimal)).map(Number),
)
python_sets = st.one_of(
    st.sets(st.text(max_size=4), max_size=3),
    st.sets(st.integers(-(10**39), 10**39), max_size=3),
    st.sets(st.decimals(allow_nan=False, places=2, min_value=-999, max_value=999), max_size=3),
    st.sets(st.binary(max_size=3), max_size=3),
    st.sets(st.binary(max_size=3).map(Binary), max_size=3),
    st.sets(
        st.one_of(st.text(max_size=2), st.integers(0, 3), st.booleans(), st.binary(max_size=2)), max_size=3
    ),
    st.frozensets(st.text(max_size=2), max_size=2),
    st.sets(st.floats(allow_nan=False), min_size=1, max_size=2),
)
python_values = st.recursive(
    st.one_of(python_scalars, python_sets),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.dictionaries(st.text(max_size=3), inner, max_size=2).map(OrderedDict),
    ),
    max_leaves=10,
)
python_items = st.dictionaries(st.text(min_size=1, max_size=4), python_values, max_size=5)


def outcome(convert: Any, item: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", convert(item)
    except Exception as err:  # the same error, type and message, as boto3's
        return "error", (type(err), str(err))


@settings(max_examples=500)
@given(python_items)
def test_items_go_to_stream_form_exactly_as_boto3_serialises_them(item: dict[str, Any]) -> None:
    ours, reference = outcome(item_from_python, item), outcome(boto3_serialized, item)
    assert ours == reference
    assert repr(ours) == repr(reference)  # the same types (bool stays bool, texts stay str)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        0,
        -(10**37),
        10**38 - 1,
        Decimal("1.50"),
        Decimal("-1E-130"),
        True,
        False,
        None,
        Binary(b""),
        Binary(b"\x00\xff"),
        b"\x01",
        bytearray(b"\x02"),
        set(),
        {"a", "b"},
        {1, Decimal("2.5")},
        {Binary(b"\x01")},
        {b"\x01", b"\x02"},
        frozenset({"a"}),
        {},
        [],
        (),
        {"m": {"l": [1, "a", None]}},
        Text("t"),
        Number("1.0"),
        OrderedDict(a=1),
    ],
)
def test_every_kind_of_value_as_boto3_types_it(value: Any) -> None:
    assert repr(item_from_python({"v": value})) == repr(boto3_serialized({"v": value}))


@pytest.mark.parametrize(
    "value", [1.5, Decimal("NaN"), Decimal("Infinity"), 10**38, Decimal("1" * 39), {1.5}, object()]
)
def test_values_boto3_refuses_are_refused_with_its_error(value: Any) -> None:
    ours, reference = outcome(item_from_python, {"v": value}), outcome(boto3_serialized, {"v": value})
    assert ours[0] == "error"
    assert ours == reference
