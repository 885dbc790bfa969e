"""Terminal tables and number formatting. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence

Cell = str | int | float | None


def number(value: float | None, unit: str = "") -> str:
    """Three significant figures with a k/M suffix: 12345 -> "12.3k"."""
    if value is None:
        return "-"
    if math.isinf(value) or math.isnan(value):
        return str(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{_sig3(value / limit)}{suffix}{unit}"
    return f"{_sig3(value)}{unit}"


def _sig3(value: float) -> str:
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def times(value: float | None) -> str:
    """A ratio as "12.3x"."""
    return "-" if value is None else f"{_sig3(value)}x"


def cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return number(value)
    return str(value)


def render(headers: Sequence[str], rows: Sequence[Sequence[Cell]], title: str = "") -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    text = [[str(h) for h in headers]] + [[cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) if i < len(r) else 0 for r in text) for i in range(len(headers))]
    lines = [title] if title else []
    for n, row in enumerate(text):
        padded = [row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))]
        lines.append("  ".join(padded).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
