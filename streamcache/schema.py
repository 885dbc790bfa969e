"""Which key attribute is the hash and which the range, per table.

Stream records do not say: ``Keys`` is an unordered map. KEY_SCHEMA answers
first; a table not listed is described once per execution environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streamcache.errors import UnknownTableError


@dataclass(frozen=True)
class TableKeys:
    names: tuple[str, ...]  # hash first, then range if any
    types: tuple[str, ...] | None = None  # "S" | "N" | "B", when DescribeTable told us


Describe = Callable[[str], TableKeys]


class KeySchemas:
    """KEY_SCHEMA first, then ``describe(table)`` once per table (cached)."""

    def __init__(self, configured: Mapping[str, tuple[str, ...]], describe: Describe | None) -> None:
        self._known = {table: TableKeys(names) for table, names in configured.items()}
        self._describe = describe

    def keys_of(self, table: str) -> TableKeys:
        known = self._known.get(table)
        if known is None:
            known = self._known[table] = self._lookup(table)
        return known

    def typed_keys_of(self, table: str) -> TableKeys:
        """Like ``keys_of`` but guaranteed to know attribute types (describes if needed)."""
        known = self.keys_of(table)
        if known.types is None:
            known = self._known[table] = self._lookup(table)
        return known

    def _lookup(self, table: str) -> TableKeys:
        if self._describe is None:
            raise UnknownTableError(f"table {table!r} is not in KEY_SCHEMA; add it there")
        try:
            return self._describe(table)
        except UnknownTableError:
            raise
        except Exception as err:  # boto errors, timeouts: the table cannot be served
            raise UnknownTableError(
                f"table {table!r} is not in KEY_SCHEMA and DescribeTable failed "
                f"({type(err).__name__}); add it to KEY_SCHEMA"
            ) from err


def table_keys_from_description(description: Mapping[str, Any]) -> TableKeys:
    """Parse a DescribeTable ``Table`` into ``TableKeys``."""
    ordered = sorted(description["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
    names = tuple(k["AttributeName"] for k in ordered)
    return TableKeys(names, tuple(types[n] for n in names))


def describe_with_boto3(endpoint_url: str | None = None) -> Describe:
    """A ``Describe`` that calls DynamoDB's DescribeTable through a lazy boto3 client."""

    def describe(table: str) -> TableKeys:
        from streamcache.aws import client

        response = client("dynamodb", endpoint_url).describe_table(TableName=table)
        return table_keys_from_description(response["Table"])

    return describe
