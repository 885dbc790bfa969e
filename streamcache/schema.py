"""Which key attribute is the hash and which the range, per table.

Stream records do not say: ``Keys`` is an unordered map. KEY_SCHEMA answers
first; a table not listed is described once per execution environment. A
record whose ``Keys`` holds one attribute needs neither: that one is the hash.

A wrong KEY_SCHEMA must be loud, never stale: when a description disagrees
with it (hash and range swapped, a range missing or extra) the table is
refused with ``KeySchemaMismatchError``, and a record whose ``Keys`` names
other attributes than the configured ones is refused too.

DescribeTable is bounded: a failure is remembered for ``failure_ttl_s`` (a
batch of 200 records for a table that cannot be described makes one call, not
200), and no call starts unless its worst case fits in the invocation's
remaining time (``aws.time_left``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from streamcache import aws
from streamcache.errors import KeySchemaMismatchError, UnknownTableError

# How long a failed DescribeTable is remembered before the next call may try again.
DESCRIBE_FAILURE_TTL_S = 10.0
# DescribeTable's own budgets, most generous first: the first whose worst case fits in the
# invocation's remaining time is used (a reader with a 3 s timeout still describes its table).
DESCRIBE_TIMEOUTS = aws.AwsTimeouts(connect_s=1, read_s=2, attempts=2)  # worst 7 s
DESCRIBE_TIMEOUTS_SHORT = aws.AwsTimeouts(connect_s=0.5, read_s=1, attempts=1)  # worst 1.5 s
DESCRIBE_BUDGETS = (DESCRIBE_TIMEOUTS, DESCRIBE_TIMEOUTS_SHORT)


class OutOfTimeError(UnknownTableError):
    """The invocation has too little time left for a DescribeTable to finish."""


@dataclass(frozen=True)
class TableKeys:
    names: tuple[str, ...]  # hash first, then range if any
    types: tuple[str, ...] | None = None  # "S" | "N" | "B", when DescribeTable told us


Describe = Callable[[str], TableKeys]


class KeySchemas:
    """KEY_SCHEMA first, then ``describe(table)`` once per table (cached; failures briefly)."""

    def __init__(
        self,
        configured: Mapping[str, tuple[str, ...]],
        describe: Describe | None,
        failure_ttl_s: float = DESCRIBE_FAILURE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configured = dict(configured)
        self._known = {table: TableKeys(names) for table, names in configured.items()}
        self._describe = describe
        self._failure_ttl_s = failure_ttl_s
        self._clock = clock
        self._failures: dict[str, tuple[float, UnknownTableError]] = {}  # table -> (retry after, why)

    def keys_of(self, table: str) -> TableKeys:
        known = self._known.get(table)
        if known is None:
            known = self._known[table] = self._lookup(table)
        return known

    def typed_keys_of(self, table: str) -> TableKeys:
        """Like ``keys_of`` but guaranteed to know attribute types (describes if needed).

        Raises ``KeySchemaMismatchError`` when KEY_SCHEMA disagrees with the table.
        """
        known = self.keys_of(table)
        if known.types is None:
            described = self._lookup(table)
            if described.names != known.names:
                failure = mismatch(
                    table, known.names, f"the table has key attributes {list(described.names)}"
                )
                self._remember(table, failure, forever=True)  # a table's key schema never changes
                raise failure
            known = self._known[table] = described
        return known

    def names_for_record(self, table: str, attributes: Collection[str]) -> tuple[str, ...]:
        """Hash (then range) names for a record whose ``Keys`` holds ``attributes``."""
        if len(attributes) == 1 and table not in self._configured:
            return tuple(attributes)  # DynamoDB's Keys carries every key attribute: one is the hash
        try:
            names = self.keys_of(table).names
        except KeySchemaMismatchError:
            raise
        except UnknownTableError as err:
            raise UnknownTableError(err.problem, suggestion(table, attributes)) from err
        if set(names) != set(attributes):
            raise mismatch(table, names, f"the record's Keys has attributes {sorted(attributes)}")
        return names

    def _lookup(self, table: str) -> TableKeys:
        failed = self._failures.get(table)
        if failed is not None and failed[0] > self._clock():
            raise _fresh(failed[1])  # a new instance: re-raising one would grow its traceback forever
        if self._describe is None:
            raise UnknownTableError(f"table {table!r} is not in KEY_SCHEMA")
        try:
            return self._describe(table)
        except OutOfTimeError:  # this invocation's problem, not the table's: the next one may describe
            raise
        except UnknownTableError as err:
            self._remember(table, err)
            raise
        except Exception as err:  # boto errors, timeouts: the table cannot be served
            failure = UnknownTableError(
                f"table {table!r} is not in KEY_SCHEMA and DescribeTable failed ({type(err).__name__})"
            )
            self._remember(table, failure)
            raise failure from err

    def _remember(self, table: str, error: UnknownTableError, forever: bool = False) -> None:
        self._failures[table] = (math.inf if forever else self._clock() + self._failure_ttl_s, error)


def _fresh(error: UnknownTableError) -> UnknownTableError:
    if isinstance(error, KeySchemaMismatchError):
        return KeySchemaMismatchError(error.table, error.problem, error.fix)
    return UnknownTableError(error.problem, error.fix)


def mismatch(table: str, configured: tuple[str, ...], actual: str) -> KeySchemaMismatchError:
    """``actual``: what disagrees, e.g. "the table has key attributes ['pk', 'sk']" (hash first)."""
    return KeySchemaMismatchError(
        table, f"KEY_SCHEMA for table {table!r} is {list(configured)} (hash first) but {actual}"
    )


def suggestion(table: str, attributes: Collection[str]) -> str:
    """The exact KEY_SCHEMA to add for a record's ``Keys`` attributes (their order is a guess)."""
    names = sorted(attributes)
    text = f"add it to KEY_SCHEMA: KEY_SCHEMA='{json.dumps({table: names})}'"
    if len(names) == 2:
        text += f" (hash attribute first: swap them if {names[1]!r} is the hash)"
    return text


def table_keys_from_description(description: Mapping[str, Any]) -> TableKeys:
    """Parse a DescribeTable ``Table`` into ``TableKeys``."""
    ordered = sorted(description["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
    names = tuple(k["AttributeName"] for k in ordered)
    return TableKeys(names, tuple(types[n] for n in names))


def describe_with_boto3(endpoint_url: str | None = None) -> Describe:
    """A ``Describe`` calling DynamoDB's DescribeTable (lazy boto3), never past the invocation's deadline."""

    def describe(table: str) -> TableKeys:
        left = aws.time_left()
        budget = next((b for b in DESCRIBE_BUDGETS if b.worst_s <= left), None)
        if budget is None:
            raise OutOfTimeError(
                f"table {table!r}: not enough time left to describe it ({left:.1f} s left, "
                f"a DescribeTable may take {DESCRIBE_TIMEOUTS_SHORT.worst_s} s)"
            )
        response = aws.client("dynamodb", endpoint_url, budget).describe_table(TableName=table)
        return table_keys_from_description(response["Table"])

    return describe
