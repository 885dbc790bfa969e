"""CONTRACT section 1: the key format, injective and canonical."""

from __future__ import annotations

import base64
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcache import numbers as numbers_module
from streamcache.errors import KeyValueError, RecordError
from streamcache.keys import cache_key, esc, table_from_arn
from streamcache.numbers import canonical_number

# Mostly a tiny alphabet heavy in separators and escapes, so collisions are likely if possible.
TOKENS = st.sampled_from(["a", "-", "%", "%2D", "%25", "2D"])
S = st.one_of(st.lists(TOKENS, min_size=1, max_size=4).map("".join), st.text(min_size=1, max_size=20))
# Any DynamoDB number: up to 38 significant digits, exponent within range.
NUMBER_TEXT = st.builds(
    lambda digits, exponent: f"{digits}E{exponent}",
    st.integers(-(10**38) + 1, 10**38 - 1),
    st.integers(-90, 80),
)


def test_keys_without_separator_look_like_the_seed() -> None:
    key = cache_key("orders", {"sk": {"N": "42"}, "pk": {"S": "u1"}}, ("pk", "sk"))
    assert key == "orders-u1-42"


def test_hash_only_table() -> None:
    assert cache_key("users", {"id": {"S": "u1"}}, ("id",)) == "users-u1"


def test_prefix_is_prepended() -> None:
    assert cache_key("t", {"id": {"S": "x"}}, ("id",), prefix="app:") == "app:t-x"


def test_hyphen_and_percent_are_escaped_everywhere() -> None:
    key = cache_key("my-table", {"pk": {"S": "a-b%c"}, "sk": {"N": "-1.50"}}, ("pk", "sk"))
    assert key == "my%2Dtable-a%2Db%25c-%2D1.5"


def test_hyphens_no_longer_collide() -> None:
    left = cache_key("t", {"pk": {"S": "a-b"}, "sk": {"S": "c"}}, ("pk", "sk"))
    right = cache_key("t", {"pk": {"S": "a"}, "sk": {"S": "b-c"}}, ("pk", "sk"))
    assert left != right


def test_order_comes_from_schema_not_from_record() -> None:
    keys = {"sk": {"S": "s"}, "pk": {"S": "p"}}
    assert cache_key("t", keys, ("pk", "sk")) == "t-p-s"
    assert cache_key("t", keys, ("sk", "pk")) == "t-s-p"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("1.50", "1.5"),
        ("1e2", "100"),
        ("-0", "0"),
        ("+7", "7"),
        ("0.000", "0"),
        ("1E-3", "0.001"),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("1.2345678901234567890123456789012345678E+5", "123456.78901234567890123456789012345678"),
        ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + "0" * 88),
    ],
)
def test_numbers_are_canonical_and_exact(raw: str, canonical: str) -> None:
    assert canonical_number(raw) == canonical


def test_38_digit_key_is_not_rounded() -> None:
    digits = "12345678901234567890123456789012345678"
    assert cache_key("t", {"id": {"N": digits}}, ("id",)) == f"t-{digits}"
    assert cache_key("t", {"id": {"N": digits[:-1] + "9"}}, ("id",)) != f"t-{digits}"


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "1" * 39, ""])
def test_bad_numbers_are_rejected_naming_the_attribute(bad: str) -> None:
    with pytest.raises(KeyValueError, match="'sk'"):
        cache_key("t", {"pk": {"S": "p"}, "sk": {"N": bad}}, ("pk", "sk"))


def test_binary_is_standard_base64() -> None:
    assert cache_key("t", {"id": {"B": b"\xff\xfe-"}}, ("id",)) == "t-//4t"
    assert cache_key("t", {"id": {"B": "//4t"}}, ("id",)) == "t-//4t"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ({"pk": {"S": "p"}}, "'sk' is missing"),
        ({"pk": {"S": "p"}, "sk": {"BOOL": True}}, "'sk' has type 'BOOL'"),
        ({"pk": {"S": "p"}, "sk": "plain"}, "'sk' is not a typed value"),
        ({"pk": {"B": "not base64!"}, "sk": {"S": "s"}}, "'pk': value is not valid base64"),
    ],
)
def test_unusable_keys_name_the_attribute(key: dict, message: str) -> None:
    with pytest.raises(KeyValueError, match=message):
        cache_key("t", key, ("pk", "sk"))


def test_table_from_stream_arn() -> None:
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/my-table/stream/2026-01-01T00:00:00.000"
    assert table_from_arn(arn) == "my-table"


@pytest.mark.parametrize(
    "arn",
    [
        None,
        42,
        "",
        "arn:aws:sqs:us-east-1:1:queue",
        "arn:aws:dynamodb:r:a:index/x",
        "table/t",
        "arn:aws:dynamodb:r:a:table/\ud800/stream/x",  # not a table name: would break the key's encoding
        "arn:aws:dynamodb:r:a:table/a b/stream/x",
        "arn:aws:dynamodb:r:a:table/" + "t" * 256 + "/stream/x",
    ],
)
def test_bad_arn_is_a_record_error(arn: object) -> None:
    with pytest.raises(RecordError, match="eventSourceARN"):
        table_from_arn(arn)


VALUES_OF = {
    "S": S.map(lambda s: {"S": s}),
    "N": NUMBER_TEXT.map(lambda n: {"N": n}),
    "B": st.binary(min_size=1, max_size=10).map(lambda b: {"B": b}),
}


@st.composite
def two_items_of_one_schema(draw: st.DrawFn) -> tuple[tuple, tuple]:
    """Key types are fixed per table attribute, so both items share them."""
    h_type, r_type = draw(st.sampled_from("SNB")), draw(st.sampled_from("SNB"))
    items = [(draw(S), draw(VALUES_OF[h_type]), draw(VALUES_OF[r_type])) for _ in range(2)]
    if draw(st.booleans()):  # often share the table, so hash/range collisions are explored
        items[1] = (items[0][0], *items[1][1:])
    return items[0], items[1]


@given(two_items_of_one_schema())
def test_different_items_never_share_a_key(pair: tuple[tuple, tuple]) -> None:
    a, b = pair
    key_a = cache_key(a[0], {"h": a[1], "r": a[2]}, ("h", "r"))
    key_b = cache_key(b[0], {"h": b[1], "r": b[2]}, ("h", "r"))
    assert (key_a == key_b) == (_identity(a) == _identity(b))


@given(st.lists(TOKENS, min_size=3, max_size=8).map("".join), st.data())
def test_every_split_of_a_seed_key_is_a_different_item(flat: str, data: st.DataObject) -> None:
    """The seed format's collisions: one joined string, many (table, hash, range) splits."""
    cuts = [i for i, ch in enumerate(flat) if ch == "-" and 0 < i < len(flat) - 1]
    splits = {
        (flat[:i], flat[i + 1 : j], flat[j + 1 :])
        for i in cuts
        for j in cuts
        if j > i + 1 and j < len(flat) - 1
    }
    keys = {cache_key(t, {"h": {"S": h}, "r": {"S": r}}, ("h", "r")) for t, h, r in splits}
    assert len(keys) == len(splits)


def _identity(item: tuple) -> tuple:
    table, *values = item
    return (table, *(_value_identity(v) for v in values))


def _value_identity(value: dict) -> tuple:
    ((type_, raw),) = value.items()
    return (type_, Decimal(raw)) if type_ == "N" else (type_, raw)


@given(NUMBER_TEXT)
def test_numbers_dynamodb_treats_as_equal_share_a_key(text: str) -> None:
    value = Decimal(text)
    variants = [text, f"{value:E}", f"{value:f}", f"+{value:f}".replace("+-", "-")]
    if "." in f"{value:f}":
        variants.append(f"{value:f}0")
    keys = {cache_key("t", {"n": {"N": v}}, ("n",)) for v in variants}
    assert len(keys) == 1
    assert Decimal(keys.pop()[2:].replace("%2D", "-")) == value


def test_esc_is_reversible_in_order() -> None:
    assert esc("%2D-") == "%252D%2D"


@given(st.integers(min_value=0, max_value=10**38 - 1).map(str))
def test_integer_fast_path_agrees_with_decimal_path(text: str) -> None:
    slow = format(Decimal(text).normalize(numbers_module._EXACT), "f")
    assert canonical_number(text) == ("0" if Decimal(text).is_zero() else slow)
    assert canonical_number("0" + text) == canonical_number(text)  # leading zero: slow path
    assert numbers_module.plain_number(text) == int(text)


# -- hostile input: DynamoDB's number range, key sizes, text that is not Unicode --


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("1e999999999", "below 1E+126"),  # decimal.Overflow before
        ("-1E+126", "below 1E+126"),
        ("1e999999", "below 1E+126"),  # a megabyte of digits before
        ("1e-999999999", "at least 1E-130"),  # silently 0 before
        ("-1E-131", "at least 1E-130"),
        ("1e99999999999999999999999", "not a number"),  # an exponent no context holds
    ],
)
def test_numbers_outside_dynamodb_range_are_refused(raw: str, says: str) -> None:
    with pytest.raises(KeyValueError, match=f"'sk': .*{re.escape(says)}"):
        cache_key("t", {"pk": {"S": "a"}, "sk": {"N": raw}}, ("pk", "sk"))


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + "0" * 88),
        ("1E-130", "0." + "0" * 129 + "1"),
        ("0E+999999999", "0"),  # zero with any exponent is zero (normalising it would clamp)
        ("-0E-999999999", "0"),
    ],
)
def test_the_edges_of_dynamodb_range_are_keys(raw: str, canonical: str) -> None:
    assert canonical_number(raw) == canonical


@given(st.integers(-(10**38) + 1, 10**38 - 1), st.integers(-200, 200))
def test_range_check_agrees_with_dynamodb_limits(digits: int, exponent: int) -> None:
    value = Decimal(f"{digits}E{exponent}")
    allowed = value.is_zero() or Decimal("1E-130") <= abs(value) < Decimal("1E+126")
    try:
        canonical = canonical_number(f"{digits}E{exponent}")
    except KeyValueError:
        assert not allowed
    else:
        assert allowed and Decimal(canonical) == value and len(canonical) <= 170


@pytest.mark.parametrize(
    ("index", "value", "limit"),
    [
        (0, {"S": "x" * 2049}, 2048),
        (0, {"S": "é" * 1025}, 2048),  # bytes of UTF-8, not characters
        (1, {"S": "x" * 1025}, 1024),
        (1, {"B": b"\x00" * 1025}, 1024),
        (0, {"B": base64.b64encode(b"\x00" * 2049).decode()}, 2048),
    ],
)
def test_key_components_are_bounded_by_dynamodb_key_limits(index: int, value: dict, limit: int) -> None:
    key = {"h": {"S": "a"}, "r": {"S": "b"}}
    key["hr"[index]] = value
    with pytest.raises(KeyValueError, match=f"DynamoDB allows at most {limit}"):
        cache_key("t", key, ("h", "r"))
    key["hr"[index]] = {"S": "x" * limit} if "S" in value else {"B": b"\x00" * limit}
    assert cache_key("t", key, ("h", "r"))  # exactly at the limit: fine


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc80"])
def test_a_lone_surrogate_is_a_key_value_error(text: str) -> None:
    with pytest.raises(KeyValueError, match="'pk': value is not valid Unicode text"):
        cache_key("t", {"pk": {"S": text}}, ("pk",))
