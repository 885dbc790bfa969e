"""Index layouts of the query-cache tables: DescribeTable once per table per execution environment.

Only tables listed in QUERY_CACHE_TABLES are described, so a deployment that
does not cache queries never imports boto3 for this. A failed DescribeTable is
not cached: the records that needed it are reported and retried by Lambda.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streamcache.errors import UnknownTableError
from streamcache.partitions import TableIndexes, layout_from_description

DescribeTable = Callable[[str], Mapping[str, Any]]  # table name -> DescribeTable's "Table"


class Layouts:
    def __init__(self, tables: frozenset[str], describe: DescribeTable) -> None:
        self._tables = tables
        self._describe = describe
        self._known: dict[str, TableIndexes] = {}

    def caches(self, table: str) -> bool:
        return table in self._tables

    def of(self, table: str) -> TableIndexes:
        known = self._known.get(table)
        if known is None:
            try:
                known = layout_from_description(self._describe(table))
            except Exception as err:  # boto errors, timeouts: partitions cannot be followed now
                why = type(err).__name__
                raise UnknownTableError(
                    f"table {table!r} is in QUERY_CACHE_TABLES and DescribeTable failed ({why})"
                ) from err
            self._known[table] = known
        return known


def describe_table_with_boto3(endpoint_url: str | None = None) -> DescribeTable:
    def describe(table: str) -> Mapping[str, Any]:
        from streamcache.aws import client

        response = client("dynamodb", endpoint_url).describe_table(TableName=table)
        description: Mapping[str, Any] = response["Table"]
        return description

    return describe
