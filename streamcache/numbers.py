"""DynamoDB numbers, exactly.

DynamoDB numbers carry up to 38 significant digits. Python's default decimal
context rounds at 28, and ``float`` at ~17, so neither is ever used here:
parsing a string into ``Decimal`` is exact, and normalisation runs in a local
context wide enough to never round.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation

from streamcache.errors import KeyValueError

MAX_DIGITS = 38
# Normalising a <=38-digit number in a 40-digit context never rounds.
_EXACT = Context(prec=MAX_DIGITS + 2, Emin=-999999, Emax=999999)


def parse_number(text: str) -> Decimal:
    """Parse a DynamoDB number string; reject NaN, infinities and >38 digits."""
    try:
        value = Decimal(text.strip()) if isinstance(text, str) else Decimal("nan")
    except InvalidOperation as err:
        raise KeyValueError("value is not a number") from err
    if not value.is_finite():
        raise KeyValueError("value is not a finite number")
    if len(value.normalize(_EXACT).as_tuple().digits) > MAX_DIGITS:
        raise KeyValueError(f"value has more than {MAX_DIGITS} significant digits")
    return value


def canonical_number(text: str) -> str:
    """The canonical decimal text of a DynamoDB number (CONTRACT section 1).

    Exact, no exponent, no trailing zeros after the point, no leading ``+``,
    zero is ``0``: ``1.50`` -> ``1.5``, ``1e2`` -> ``100``, ``-0`` -> ``0``.
    """
    if _is_canonical_integer(text):  # most keys: already canonical, skip Decimal (~3x faster)
        return text
    value = parse_number(text)
    if value.is_zero():
        return "0"
    return format(value.normalize(_EXACT), "f")


def _is_canonical_integer(text: object) -> bool:
    """1 to 38 ASCII digits without a leading zero (or "0"): canonical as it stands."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= MAX_DIGITS
        and text.isascii()
        and text.isdigit()
        and (text[0] != "0" or text == "0")
    )


def plain_number(text: str) -> int | float:
    """``int`` when integral, else ``float`` (the reader's ``plain`` format)."""
    if _is_canonical_integer(text[1:] if text[:1] == "-" else text):  # most numbers: skip Decimal
        return int(text)
    value = parse_number(text)
    if value == value.to_integral_value(context=_EXACT):
        return int(value)
    return float(value)
