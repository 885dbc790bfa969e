"""Typed DynamoDB JSON <-> plain, and boto3 output -> stream form."""

from __future__ import annotations

import base64
from decimal import Context, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcache.codec import (
    AttributeValueError,
    item_from_boto3,
    item_to_plain,
    number_text,
    value_to_plain,
)
from streamcache.numbers import _is_canonical_integer, parse_number, plain_number

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


# -- the plain fast paths answer exactly what the general ones do -----------------------


def reference_plain_number(text: Any) -> int | float:
    """``plain_number`` before its fast path for decimals: everything through ``parse_number``."""
    if _is_canonical_integer(text[1:] if text[:1] == "-" else text):
        return int(text)
    value = parse_number(text)
    if value == value.to_integral_value(context=Context(prec=40, Emin=-999999, Emax=999999)):
        return int(value)
    return float(value)


def outcome(convert: Any, value: Any) -> tuple[str, Any]:
    try:
        answer = convert(value)
    except Exception as err:  # the same error type as the general path
        return "error", type(err)
    return "value", (type(answer), answer, repr(answer))


number_texts = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(places=4, min_value=-(10**36), max_value=10**36).map(str),
    st.from_regex(r"\A-?[0-9]{1,40}\.[0-9]{1,40}\Z"),
    st.from_regex(r"\A[-+ ]?[0-9_٣]{0,4}\.?[0-9_]{0,4}([eE][-+]?[0-9]{1,3})?\s?\Z"),
    st.sampled_from(
        [
            "0.0",
            "-0.0",
            "-0",
            "007.50",
            "1.",
            ".5",
            "-.5",
            "1..2",
            "12.000",
            "-12.000",
            BIG[:37] + ".1",
            BIG + ".0",
            "0." + "0" * 37 + "1",
            "0." + "0" * 36 + "1",
            "9" * 20 + "." + "9" * 18,
            "NaN",
            "-",
            "",
        ]
    ),
    st.text(max_size=6),
)


@settings(max_examples=1000)
@given(number_texts)
def test_plain_numbers_are_those_of_the_decimal_path(text: str) -> None:
    assert outcome(plain_number, text) == outcome(reference_plain_number, text)


@pytest.mark.parametrize(
    "text",
    [
        BIG + ".1",  # 39 significant digits: refused
        "1" + "0" * 37 + ".5",
        BIG + ".0",  # 38 after all: answered
        "1.\u00b2",  # a superscript two is a digit to isdigit, not to Decimal
        "\u00b2.1",
        "1.\u0663",  # an Arabic-Indic three is a decimal digit to both
        "\u0663.1",
        "1_0.5",  # float() takes underscores, Decimal() too: the general path decides
        "0",
        "-0",
        "00",  # not canonical: through Decimal
        "1" * 38,
        "1" * 39,  # 39 digits: refused
        "-" + "9" * 38,
        "\u0663",  # a decimal digit to isdigit, not ASCII
        "1.5_0",
    ],
)
def test_plain_number_edges_are_those_of_the_decimal_path(text: str) -> None:
    assert outcome(plain_number, text) == outcome(reference_plain_number, text)


class Text(str):
    pass


@pytest.mark.parametrize(
    "value", [5, 1.5, None, ["1"], b"1.5", ("-", "1"), Text("5"), Text("-1.5"), Text("x")]
)
def test_plain_number_of_a_non_text_fails_as_before(value: Any) -> None:
    assert outcome(plain_number, value) == outcome(reference_plain_number, value)


def test_short_decimals_take_the_fast_path_exactly() -> None:
    assert plain_number("8.01") == 8.01 and type(plain_number("8.01")) is float
    assert plain_number("-12.000") == -12 and type(plain_number("-12.000")) is int
    assert plain_number("-0.0") == 0 and type(plain_number("-0.0")) is int
    assert plain_number("0.1") == float(Decimal("0.1"))


class TypedValue(dict):  # type: ignore[type-arg]
    pass


valid_numbers = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30, places=6),
    st.integers(-(10**37), 10**37),
).map(str)
typed_values = st.recursive(
    st.one_of(
        st.text(max_size=4).map(lambda s: {"S": s}),
        valid_numbers.map(lambda n: {"N": n}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.binary(max_size=4).map(lambda b: {"B": base64.b64encode(b).decode()}),
        st.lists(st.text(max_size=3), max_size=3).map(lambda v: {"SS": v}),
        st.lists(st.integers(-99, 99).map(str), max_size=3).map(lambda v: {"NS": v}),
        # malformed, yet answered by the general path: the fast one must answer the same
        st.sampled_from([{"S": 5}, {"S": None}, {"BOOL": 1}, {"NULL": False}, {"B": 7}]),
        st.text(max_size=3).map(lambda s: TypedValue(S=s)),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.text(max_size=3), inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=10,
)
refused_values = st.one_of(
    number_texts.map(lambda n: {"N": n}),
    st.sampled_from([{"Q": "1"}, {"S": "a", "N": "1"}, {}, "S", None, ["S", "a"], {"N": 5}]),
)


def reference_item_to_plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: value_to_plain(value) for name, value in item.items()}


@settings(max_examples=500)
@given(st.dictionaries(st.text(max_size=4), typed_values, max_size=6))
def test_plain_items_are_value_to_plain_of_every_attribute(item: dict[str, Any]) -> None:
    ours = outcome(item_to_plain, item)
    assert ours == outcome(reference_item_to_plain, item)
    assert ours[0] == "value"


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=3), typed_values, max_size=2), refused_values)
def test_plain_items_fail_as_value_to_plain_fails(item: dict[str, Any], value: Any) -> None:
    item = {**item, "bad": value}
    assert outcome(item_to_plain, item) == outcome(reference_item_to_plain, item)
