"""DynamoDB numbers, exactly.

DynamoDB numbers carry up to 38 significant digits. Python's default decimal
context rounds at 28, and ``float`` at ~17, so neither is ever used here:
parsing a string into ``Decimal`` is exact, and normalisation runs in a local
context wide enough to never round.

DynamoDB's range is checked before any arithmetic: magnitudes from 1E-130 to
below 1E+126 (and zero). Outside it a number would overflow or underflow the
context (``1e999999999`` raised ``decimal.Overflow``), quietly become ``0``
(``1e-999999999``), or expand into a megabyte of digits (``1e999999``).
"""

from __future__ import annotations

from decimal import (
    Clamped,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Subnormal,
    Underflow,
)

from streamcache.errors import KeyValueError

MAX_DIGITS = 38
# DynamoDB's number range, as exponents of the leading digit (Decimal.adjusted()).
MAX_ADJUSTED_EXPONENT = 125  # up to 9.99...E+125
MIN_ADJUSTED_EXPONENT = -130  # down to 1E-130
# Normalising a <=38-digit number in a 40-digit context never rounds.
# Every signal that changes a value traps (Rounded alone only drops trailing zeros):
# within DynamoDB's range none can fire, so one that does is an error, never a silent rounding.
_EXACT = Context(
    prec=MAX_DIGITS + 2,
    Emin=-999999,
    Emax=999999,
    traps=[InvalidOperation, Overflow, Underflow, Clamped, Inexact, Subnormal, DivisionByZero],
)


def parse_number(text: str) -> Decimal:
    """Parse a DynamoDB number string; reject NaN, infinities, >38 digits and values out of range."""
    try:
        value = Decimal(text.strip()) if isinstance(text, str) else Decimal("nan")
    except (InvalidOperation, ValueError) as err:  # ValueError: an exponent beyond any context
        raise KeyValueError("value is not a number") from err
    if not value.is_finite():
        raise KeyValueError("value is not a finite number")
    if value.is_zero():  # any exponent: 0E+999999999 is zero, and normalising it would clamp
        return value
    _check_range(value)
    try:
        digits = len(value.normalize(_EXACT).as_tuple().digits)
    except Inexact:  # more than the context's digits: certainly more than DynamoDB's
        digits = MAX_DIGITS + 1
    if digits > MAX_DIGITS:
        raise KeyValueError(f"value has more than {MAX_DIGITS} significant digits")
    return value


def _check_range(value: Decimal) -> None:
    """DynamoDB's range; ``adjusted()`` needs no context, so nothing can overflow here."""
    if value.adjusted() > MAX_ADJUSTED_EXPONENT:
        raise KeyValueError("value is out of DynamoDB's number range (magnitude must be below 1E+126)")
    if value.adjusted() < MIN_ADJUSTED_EXPONENT:
        raise KeyValueError("value is out of DynamoDB's number range (magnitude must be at least 1E-130)")


def canonical_number(text: str) -> str:
    """The canonical decimal text of a DynamoDB number (cache keys, docs/protocol.md).

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


def _is_short_decimal(whole: str, fraction: str) -> bool:
    """ASCII digits on both sides of the point, 38 at most in all."""
    return (
        whole != ""
        and fraction != ""
        and len(whole) + len(fraction) <= MAX_DIGITS
        and whole.isascii()
        and whole.isdigit()
        and fraction.isascii()
        and fraction.isdigit()
    )


def plain_number(text: str) -> int | float:
    """``int`` when integral, else ``float`` (the reader's ``plain`` format)."""
    if type(text) is str:
        digits = text[1:] if text[:1] == "-" else text
        if digits.isdigit() and digits.isascii():  # most numbers: skip Decimal
            if len(digits) <= MAX_DIGITS and (digits[0] != "0" or digits == "0"):  # canonical
                return int(text)
        else:
            whole, point, fraction = digits.partition(".")
            if point and _is_short_decimal(whole, fraction):  # "12.50", "-0.001": skip Decimal too
                # parse_number accepts it (38 digits at most, magnitude within 1E-38..1E+38), and
                # float(text) is float(Decimal(text)): both round the same exact value to nearest.
                integral = fraction.count("0") == len(fraction)
                return int(text[: len(text) - len(fraction) - 1]) if integral else float(text)
    elif _is_canonical_integer(text[1:] if text[:1] == "-" else text):  # not a str: as it always was
        return int(text)
    value = parse_number(text)
    if value == value.to_integral_value(context=_EXACT):
        return int(value)
    return float(value)
