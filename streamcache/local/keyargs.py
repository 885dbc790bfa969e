"""Item keys typed on the command line: ``pk=u1,sk=42``, ``pk:S=007``, or a JSON object.

Shared by ``generate-event``, ``inspect`` and ``up``. A value's type is the one
written after the name (``sk:N=42``, ``id:B=AAE=``), else the table's key
schema's when known, else N when it reads as a number and S otherwise. Key
order (hash first) comes from the table's key schema when known, else from
the order written. Pure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from streamcache.errors import KeyValueError, StreamCacheError
from streamcache.keys import canonical_base64
from streamcache.numbers import canonical_number
from streamcache.schema import TableKeys
from streamcache.settings import KEY_SCHEMA, parse_key_schema

Typed = dict[str, Any]
KEY_TYPES = ("S", "N", "B")


class KeyArgumentError(StreamCacheError):
    """A key written on the command line cannot be read."""


def local_key_schema(env: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """``KEY_SCHEMA`` from the environment, else the sample tables' (events/)."""
    from streamcache.local.events import SAMPLE_KEY_SCHEMA

    env = os.environ if env is None else env
    raw = env.get(KEY_SCHEMA, "")
    if raw.strip():
        return parse_key_schema(raw)
    return {table: tuple(names) for table, names in SAMPLE_KEY_SCHEMA.items()}


def parse_key(parts: Sequence[str], schema: TableKeys | None = None) -> Typed:
    """The typed key written as ``parts`` (each ``name[:T]=value`` or comma-joined, or one JSON object)."""
    pairs = _pairs(parts)
    if not pairs:
        raise KeyArgumentError("no key given: write it as pk=u1,sk=42 (hash attribute first)")
    typed = {name: _typed(name, type_, value, _schema_type(schema, name)) for name, type_, value in pairs}
    return _ordered(typed, schema)


def _pairs(parts: Sequence[str]) -> list[tuple[str, str | None, Any]]:
    if len(parts) == 1 and parts[0].lstrip().startswith("{"):
        return _json_pairs(parts[0])
    pairs: list[tuple[str, str | None, Any]] = []
    for part in parts:
        for piece in part.split(","):
            if not piece.strip():
                continue
            name, sep, value = piece.partition("=")
            if not sep or not name.strip():
                raise KeyArgumentError(f"key part {piece!r} is not name=value (e.g. pk=u1)")
            pairs.append((*_name_and_type(name.strip()), value))
    names = [name for name, _, _ in pairs]
    if len(set(names)) != len(names):
        raise KeyArgumentError(f"key attribute written twice in {','.join(parts)!r}")
    return pairs


def _json_pairs(text: str) -> list[tuple[str, str | None, Any]]:
    try:
        data = json.loads(text)
    except ValueError as err:
        raise KeyArgumentError(f"key {text!r} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise KeyArgumentError(f'key {text!r} must be a JSON object like {{"pk": "u1", "sk": 42}}')
    return [(*_name_and_type(str(name)), value) for name, value in data.items()]


def _name_and_type(written: str) -> tuple[str, str | None]:
    name, sep, type_ = written.rpartition(":")
    if not sep:
        return written, None
    if type_ not in KEY_TYPES:
        raise KeyArgumentError(f"key attribute {written!r}: type {type_!r} is not S, N or B")
    return name, type_


def _schema_type(schema: TableKeys | None, name: str) -> str | None:
    if schema is None or schema.types is None or name not in schema.names:
        return None
    return schema.types[schema.names.index(name)]


def _typed(name: str, written: str | None, value: Any, known: str | None) -> Typed:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise KeyArgumentError(f"key attribute {name!r}: {value!r} is not a string or a number")
    text = str(value)
    type_ = written or known or _guess(value)
    try:
        if type_ == "N":
            return {"N": canonical_number(text)}
        if type_ == "B":
            return {"B": canonical_base64(text)}
    except KeyValueError as err:
        raise KeyArgumentError(f"key attribute {name!r}: {text!r} is not a valid {type_} ({err})") from None
    return {"S": text}


def _guess(value: Any) -> str:
    if isinstance(value, int | float):
        return "N"
    try:
        canonical_number(value)
    except KeyValueError:
        return "S"
    return "N"


def _ordered(typed: Typed, schema: TableKeys | None) -> Typed:
    if schema is None:
        if len(typed) > 2:
            raise KeyArgumentError(f"a key has one or two attributes, not {len(typed)}: {sorted(typed)}")
        return typed
    if set(typed) != set(schema.names):
        raise KeyArgumentError(
            f"key attributes {sorted(typed)} do not match the table's key schema {list(schema.names)}"
        )
    return {name: typed[name] for name in schema.names}
