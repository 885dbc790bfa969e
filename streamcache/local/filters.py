"""Lambda event filtering (``FilterCriteria``) for DynamoDB stream records: the EventBridge pattern grammar.

A filter is a JSON pattern; a record is delivered when it matches any filter
("If an event satisfies any one of these five filters, Lambda sends the event
to your function"), and is otherwise dropped and checkpointed without an
invocation. Within a pattern every field must match (AND); a field's list of
rules matches when any rule does (OR); ``$or`` takes a list of sub-patterns.

Rules: a literal (string, number, boolean, null; ``""`` for empty), and
``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but`` (a literal, a
list of literals, or a ``prefix``/``suffix``), ``numeric`` (one or two
comparisons) and ``exists``. Matching is on the record exactly as Lambda
delivers it (JSON): a DynamoDB ``N`` is a *string* there, so it matches the
string ``"101"`` (the documented example) but never a ``numeric`` rule, and
never the number ``101``; ``ApproximateCreationDateTime`` is a JSON number, so
``numeric`` rules apply to it. A field the record lacks matches only
``{"exists": false}`` - so ``dynamodb.NewImage.x.S`` with ``exists: false``
also matches every REMOVE (no ``NewImage``) and every image where ``x`` is
not a string. An array in the record matches when any element matches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamcache.errors import ConfigError

MAX_FILTERS = 10  # 5 by default; Lambda raises the quota to 10 on request

_MISSING = object()  # a field the record does not have
_COMPARATORS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_RULE_NAMES = {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists"}


class FilterError(ConfigError):
    """A filter pattern Lambda would refuse ("Invalid filter pattern definition")."""


@dataclass(frozen=True)
class FilterCriteria:
    """Parsed ``FilterCriteria.Filters[].Pattern`` strings; no filters means every record."""

    patterns: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def parse(cls, patterns: Sequence[str]) -> FilterCriteria:
        if len(patterns) > MAX_FILTERS:
            raise FilterError(f"{len(patterns)} filters: Lambda allows at most {MAX_FILTERS} (5 by default)")
        return cls(tuple(_parse_pattern(p) for p in patterns))

    def matches(self, record: Mapping[str, Any]) -> bool:
        return not self.patterns or any(_match_pattern(p, record) for p in self.patterns)


def _parse_pattern(text: str) -> Mapping[str, Any]:
    try:
        pattern = json.loads(text)
    except ValueError:
        raise FilterError(f"filter pattern {text!r} is not JSON: Invalid filter pattern definition") from None
    if not isinstance(pattern, dict) or not pattern:
        raise FilterError(f"filter pattern {text!r} must be a non-empty JSON object")
    _check(pattern, text)
    return pattern


def _check(pattern: Mapping[str, Any], text: str) -> None:
    """Refuse what Lambda refuses at CreateEventSourceMapping: leaves must be lists of rules."""
    for name, value in pattern.items():
        if name == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(p, dict) for p in value):
                raise FilterError(f"filter pattern {text!r}: $or needs a list of at least two patterns")
            for sub in value:
                _check(sub, text)
        elif isinstance(value, dict):
            _check(value, text)
        elif not isinstance(value, list) or not value:
            raise FilterError(f"filter pattern {text!r}: {name!r} must be a non-empty list of rules")
        else:
            for rule in value:
                _check_rule(rule, name, text)


def _check_rule(rule: Any, name: str, text: str) -> None:
    if not isinstance(rule, dict):
        return  # a literal
    if len(rule) != 1 or next(iter(rule)) not in _RULE_NAMES:
        raise FilterError(f"filter pattern {text!r}: unknown rule {rule!r} for {name!r}")
    kind, arg = next(iter(rule.items()))
    if kind == "numeric":
        _numeric_pairs(arg, text)
    elif kind == "exists" and not isinstance(arg, bool):
        raise FilterError(f"filter pattern {text!r}: exists takes true or false, not {arg!r}")
    elif kind in ("prefix", "suffix", "equals-ignore-case") and not isinstance(arg, str):
        raise FilterError(f"filter pattern {text!r}: {kind} takes a string, not {arg!r}")


def _numeric_pairs(arg: Any, text: str = "") -> list[tuple[str, float]]:
    ok = isinstance(arg, list) and len(arg) in (2, 4)
    pairs = list(zip(arg[::2], arg[1::2], strict=True)) if ok else []
    if not ok or not all(op in _COMPARATORS and _is_number(n) for op, n in pairs):
        raise FilterError(
            f"filter pattern {text!r}: numeric takes [op, number] or [op, n, op, n], not {arg!r}"
        )
    return pairs


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _match_pattern(pattern: Mapping[str, Any], event: Any) -> bool:
    return all(_match_field(name, spec, event) for name, spec in pattern.items())


def _match_field(name: str, spec: Any, event: Any) -> bool:
    if name == "$or":
        return any(_match_pattern(sub, event) for sub in spec)
    value = event.get(name, _MISSING) if isinstance(event, Mapping) else _MISSING
    if isinstance(spec, dict):
        return _match_pattern(spec, value)
    values = value if isinstance(value, list) else [value]
    return any(_match_rule(rule, v) for rule in spec for v in values) if values else _match_absent(spec)


def _match_absent(spec: list[Any]) -> bool:
    return any(_match_rule(rule, _MISSING) for rule in spec)


def _match_rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return value is not _MISSING and type(rule) is type(value) and rule == value
    kind, arg = next(iter(rule.items()))
    if kind == "exists":
        return (value is not _MISSING) is arg
    if value is _MISSING:
        return False
    if kind == "numeric":
        return _is_number(value) and all(_COMPARATORS[op](value, n) for op, n in _numeric_pairs(arg))
    if kind == "anything-but":
        return not _anything_but_hits(arg, value)
    return isinstance(value, str) and _string_rule(kind, arg, value)


def _string_rule(kind: str, arg: str, value: str) -> bool:
    if kind == "prefix":
        return value.startswith(arg)
    if kind == "suffix":
        return value.endswith(arg)
    return value.casefold() == arg.casefold()  # equals-ignore-case


def _anything_but_hits(arg: Any, value: Any) -> bool:
    """Whether ``value`` is one of the things ``anything-but`` excludes."""
    if isinstance(arg, dict):
        (kind, text), *_ = arg.items()
        return isinstance(value, str) and _string_rule(kind, text, value)
    excluded = arg if isinstance(arg, list) else [arg]
    return any(type(e) is type(value) and e == value for e in excluded)
