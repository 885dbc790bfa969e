"""DynamoDB attribute values: typed JSON <-> plain JSON, and boto3 output -> stream form.

Three shapes of one item:

- **stream form** (what the cache stores and stream records carry): typed JSON,
  numbers as strings, binary as standard base64 text (``{"B": "AAE="}``).
- **boto3 form** (what the low-level client's ``GetItem`` returns): the same,
  except binary is ``bytes``.
- **plain** (the reader's ``plain`` answer format): numbers ``int`` when
  integral else ``float``, sets sorted lists, binary base64 text, ``NULL`` None.

Pure; numbers never go through ``float`` except in the final plain answer.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from streamcache.errors import StreamCacheError
from streamcache.numbers import plain_number

Typed = dict[str, Any]


class AttributeValueError(StreamCacheError):
    """A value is not a DynamoDB attribute value in the expected form."""


# -- boto3 -> stream form -------------------------------------------------------


def item_from_boto3(item: Mapping[str, Mapping[str, Any]]) -> Typed:
    """A boto3 ``GetItem`` ``Item`` in stream form (binary as base64 text)."""
    return {name: value_from_boto3(value) for name, value in item.items()}


def value_from_boto3(value: Mapping[str, Any]) -> Typed:
    ((type_, raw),) = value.items()
    if type_ == "B":
        return {"B": _b64(raw)}
    if type_ == "BS":
        return {"BS": [_b64(b) for b in raw]}
    if type_ == "M":
        return {"M": item_from_boto3(raw)}
    if type_ == "L":
        return {"L": [value_from_boto3(v) for v in raw]}
    return {type_: raw}


def _b64(raw: bytes | bytearray | str) -> str:
    if isinstance(raw, str):  # already text (a resource-level or stubbed client)
        return raw
    return base64.b64encode(bytes(raw)).decode("ascii")


# -- stream form -> plain ------------------------------------------------------


def item_to_plain(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A stream-form item as plain JSON (the reader's ``plain`` format): ``value_to_plain`` of each.

    Its checks and dispatch inlined (a call per value is most of the cost);
    a value that is not a one-key dict goes to ``value_to_plain`` to raise.
    """
    out = {}
    for name, value in item.items():
        if type(value) is not dict or len(value) != 1:
            out[name] = value_to_plain(value)  # a dict subclass, or it raises
            continue
        for type_, raw in value.items():  # one pair; a loop is the cheapest way to unpack it
            if type_ == "S":
                out[name] = raw if type(raw) is str else str(raw)
            elif type_ == "N":
                out[name] = plain_number(raw)
            else:
                convert = _TO_PLAIN.get(type_)
                out[name] = value_to_plain(value) if convert is None else convert(raw)
    return out


def value_to_plain(value: Mapping[str, Any]) -> Any:
    if not isinstance(value, dict) or len(value) != 1:  # dict, not Mapping: an ABC check is slow
        raise AttributeValueError("an attribute value is not a one-key typed map like {'S': ...}")
    ((type_, raw),) = value.items()
    convert = _TO_PLAIN.get(type_)
    if convert is None:
        raise AttributeValueError(f"unknown attribute type {type_!r}")
    return convert(raw)


def _sorted_numbers(raw: list[str]) -> list[int | float]:
    return [plain_number(n) for n in sorted(raw, key=Decimal)]


def _sorted_binaries(raw: list[str]) -> list[str]:
    return sorted(raw, key=base64.b64decode)  # DynamoDB orders binary by bytes


_TO_PLAIN: dict[str, Any] = {
    "S": str,
    "N": plain_number,
    "B": str,
    "BOOL": bool,
    "NULL": lambda _raw: None,
    "SS": sorted,
    "NS": _sorted_numbers,
    "BS": _sorted_binaries,
    "M": item_to_plain,
    "L": lambda raw: [value_to_plain(v) for v in raw],
}


# -- plain -> number text -----------------------------------------------------


def number_text(value: int | float | Decimal) -> str:
    """The number as DynamoDB number text; ``repr`` keeps a float's shortest exact form."""
    if isinstance(value, float) and not math.isfinite(value):
        raise AttributeValueError("NaN and infinities are not DynamoDB numbers")
    return repr(value) if isinstance(value, float) else str(value)
