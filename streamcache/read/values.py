"""Stream form <-> the Python values boto3's Table resource speaks. Pure.

boto3's resource answers ``Decimal`` for numbers (in its 38-digit context),
``Binary`` for binary, ``set`` for SS/NS/BS, ``dict``/``list`` for M/L,
``None`` for NULL and ``bool`` for BOOL; ``item_to_python`` gives exactly
those from a cached item, with a dispatch table rather than boto3's
``TypeDeserializer`` (a cache hit is a few microseconds, and this is most of
them). ``item_from_python`` answers what boto3's ``TypeSerializer`` does, with
binary as base64 text, the cache's form; it types the usual values by their
exact type, and hands the rest to ``TypeSerializer``. ``key_from_python``
refuses (None) any key the cache cannot answer exactly, so that DynamoDB
answers it, or raises its error.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Context, Decimal
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, Binary, TypeSerializer

from streamcache.codec import Typed, value_from_boto3
from streamcache.numbers import MAX_DIGITS
from streamcache.schema import TableKeys

_number = DYNAMODB_CONTEXT.create_decimal
# DynamoDB's limits on key values: bytes of UTF-8 (S) or raw bytes (B).
MAX_HASH_BYTES = 2048
MAX_RANGE_BYTES = 1024


def _binary(text: str) -> Binary:
    return Binary(base64.b64decode(text))


def item_to_python(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A stream-form item as boto3's resource returns it."""
    out = {}
    for name, value in item.items():
        for type_ in value:  # one key; looping over it is the cheapest way to get it
            # S and N inline: most attributes, and a call per value is most of the cost.
            if type_ == "S":
                out[name] = value[type_]
            elif type_ == "N":
                out[name] = _number(value[type_])
            else:
                out[name] = _TO_PYTHON[type_](value[type_])
    return out


def _list(raw: list[Mapping[str, Any]]) -> list[Any]:
    return [_TO_PYTHON[t](r) for value in raw for t, r in value.items()]


_TO_PYTHON: dict[str, Any] = {
    "S": str,
    "N": _number,
    "B": _binary,
    "BOOL": bool,
    "NULL": lambda _raw: None,
    "SS": set,
    "NS": lambda raw: {_number(n) for n in raw},
    "BS": lambda raw: {_binary(b) for b in raw},
    "M": item_to_python,
    "L": _list,
}


_serializer = TypeSerializer()


def item_from_python(item: Mapping[str, Any]) -> Typed:
    """A boto3 resource item in stream form (binary as base64 text): ``TypeSerializer``'s answer.

    The values boto3's resource returns (str, Decimal, bool, None, Binary,
    dict, list, sets of str or numbers) are typed here by their exact type;
    anything else (subclasses, tuples, bytearray, floats, frozensets, sets of
    binary or of mixed types) goes through ``TypeSerializer`` itself, so its
    answers and its errors stay boto3's.
    """
    return {name: _typed(value) for name, value in item.items()}


def _typed(value: Any) -> Typed:
    kind = type(value)
    if kind is str:  # most values: no call
        return {"S": value}
    convert = _FROM_PYTHON.get(kind)
    found = None if convert is None else convert(value)
    return value_from_boto3(_serializer.serialize(value)) if found is None else found


def _set(value: set[Any]) -> Typed | None:
    kinds = set(map(type, value))
    if kinds == {str}:
        return {"SS": list(value)}
    if value and kinds <= {int, Decimal}:
        return {"NS": [_number_text(n) for n in value]}
    return None  # empty, binary or mixed: TypeSerializer decides


_FROM_PYTHON: dict[type, Any] = {
    Decimal: lambda v: {"N": _number_text(v)},
    int: lambda v: {"N": _number_text(v)},
    dict: lambda v: {"M": {name: _typed(x) for name, x in v.items()}},
    list: lambda v: {"L": [_typed(x) for x in v]},
    bool: lambda v: {"BOOL": v},
    type(None): lambda _v: {"NULL": True},
    Binary: lambda v: {"B": base64.b64encode(v.value).decode("ascii")},
    bytes: lambda v: {"B": base64.b64encode(v).decode("ascii")},
    set: _set,
}


def _number_text(value: int | Decimal) -> str:
    """``TypeSerializer``'s number text: 38 digits at most (else it raises), no NaN or Infinity."""
    text = str(_number(value))
    if text in ("Infinity", "NaN"):
        raise TypeError("Infinity and NaN not supported")
    return text


def key_from_python(key: object, schema: TableKeys) -> Typed | None:
    """The key in stream form, or None when only DynamoDB can answer it exactly.

    None for anything DynamoDB would refuse or read differently: other
    attributes than the key's, a value of the wrong type (``"42"`` for an N key
    would share the cache key of ``42``), empty or oversized values, numbers
    past 38 digits. DynamoDB then answers, or raises its own error.
    """
    if not isinstance(key, dict) or len(key) != len(schema.names):
        return None
    typed: Typed = {}
    for index, name in enumerate(schema.names):
        expected = schema.types[index] if schema.types else None
        value = _key_value(key.get(name), expected, MAX_HASH_BYTES if index == 0 else MAX_RANGE_BYTES)
        if value is None:
            return None
        typed[name] = value
    return typed


def _key_value(value: object, expected: str | None, limit: int) -> Typed | None:
    if isinstance(value, str):
        return {"S": value} if expected == "S" and 0 < _utf8_size(value) <= limit else None
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return _number_key(value) if expected == "N" else None
    if isinstance(value, (bytes, bytearray, Binary)) and expected == "B":
        raw = value.value if isinstance(value, Binary) else bytes(value)
        return {"B": base64.b64encode(raw).decode("ascii")} if 0 < len(raw) <= limit else None
    return None


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: botocore refuses to send it; let it say so
        return 0


def _number_key(value: int | Decimal) -> Typed | None:
    if type(value) is int and -_INT_LIMIT < value < _INT_LIMIT:  # most number keys: no Decimal needed
        return {"N": str(value)}
    number = Decimal(value)
    if not number.is_finite():
        return None
    if number and not MIN_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        return None  # outside DynamoDB's range: it refuses the number
    if len(number.normalize(_WIDE).as_tuple().digits) > MAX_DIGITS:
        return None
    return {"N": str(value)}


_INT_LIMIT = 10**MAX_DIGITS
# DynamoDB numbers: magnitudes from 1E-130 to 9.99...E+125.
MIN_EXPONENT, MAX_EXPONENT = -130, 125
_WIDE = Context(prec=MAX_DIGITS + 2, Emin=-999999, Emax=999999)  # normalising here never rounds
