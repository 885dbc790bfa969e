"""Query requests as the cache sees them: which partition, which cached page. Pure.

A ``Query`` always reads exactly one partition (of the table or of an index):
the one its key condition names with ``=``. Its answer is cached under that
partition's marker (``streamcache.partitions``) and a digest of everything
else that shapes the answer (conditions, filter, projection, names, values,
limit, direction, start key, select), so each page of a paginated query is
cached on its own. ``Key(...)`` conditions are turned into expression strings
with boto3's own builder, so a condition object and the string it stands for
read the same partition.

A request the cache cannot answer exactly is ``None``: the caller sends it to
DynamoDB as given (and counts it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streamcache.partitions import BASE, TableIndexes, marker_key
from streamcache.read.values import item_from_python, item_to_python

# Query arguments the cache answers exactly. Anything else (ReturnConsumedCapacity,
# the legacy KeyConditions/QueryFilter/AttributesToGet, ...) goes to DynamoDB.
CACHEABLE = frozenset(
    {
        "KeyConditionExpression",
        "FilterExpression",
        "ProjectionExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
        "Limit",
        "ScanIndexForward",
        "ExclusiveStartKey",
        "Select",
        "IndexName",
        "ConsistentRead",
    }
)

# "<name> = :<placeholder>", not part of a longer name or a function's argument list.
_EQUALS = re.compile(r"(?<![\w#:.])(#?[A-Za-z_][\w]*)\s*=\s*(:[\w]+)")


@dataclass(frozen=True)
class QueryPlan:
    """Where a cacheable query's answer lives, and how DynamoDB must be asked on a miss."""

    index: str  # BASE for the table itself
    marker: str  # the partition's marker key
    result: str  # this page's key (same hash slot as the marker)
    global_index: bool  # eventually consistent: filled only after the index settles


def plan_query(kwargs: Mapping[str, Any], table: str, layout: TableIndexes, prefix: str) -> QueryPlan | None:
    """The cache's plan for ``Table.query(**kwargs)``, or None when it must go to DynamoDB."""
    if not kwargs.keys() <= CACHEABLE or kwargs.get("ConsistentRead", False) is not False:
        return None
    index = kwargs.get("IndexName", BASE)
    if not isinstance(index, str) or (index != BASE and index not in layout.indexes):
        return None
    if index in layout.global_indexes and not layout.images_complete:
        return None  # a write can move an item out of a GSI partition unseen
    request = canonical_request(kwargs)
    if request is None:
        return None
    value = partition_value(request, layout.partition_attribute(index))
    if value is None:
        return None
    marker = marker_key(prefix, table, index, value)
    digest = hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    return QueryPlan(index, marker, f"{marker}:{digest}", index in layout.global_indexes)


def canonical_request(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The request in DynamoDB's low-level form (expression strings, typed values)."""
    from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder

    names = dict(kwargs.get("ExpressionAttributeNames") or {})
    values = dict(kwargs.get("ExpressionAttributeValues") or {})
    builder = ConditionExpressionBuilder()
    expressions: dict[str, Any] = {}
    for field, is_key in (("FilterExpression", False), ("KeyConditionExpression", True)):
        condition = kwargs.get(field)
        if isinstance(condition, ConditionBase):
            built = builder.build_expression(condition, is_key_condition=is_key)
            names.update(built.attribute_name_placeholders)
            values.update(built.attribute_value_placeholders)
            condition = built.condition_expression
        if condition is not None and not isinstance(condition, str):
            return None
        expressions[field] = condition
    if expressions["KeyConditionExpression"] is None:
        return None
    try:
        typed_values = item_from_python(values)
        start = kwargs.get("ExclusiveStartKey")
        typed_start = None if start is None else item_from_python(start)
    except (TypeError, AttributeError):
        return None  # not a value DynamoDB takes: let it say so
    return {
        **expressions,
        "IndexName": kwargs.get("IndexName"),
        "ProjectionExpression": kwargs.get("ProjectionExpression"),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": typed_values,
        "Limit": kwargs.get("Limit"),
        "ScanIndexForward": kwargs.get("ScanIndexForward", True),
        "ExclusiveStartKey": typed_start,
        "Select": kwargs.get("Select"),
    }


def partition_value(request: Mapping[str, Any], attribute: str) -> dict[str, Any] | None:
    """The typed value the key condition sets ``attribute`` equal to, or None."""
    names: Mapping[str, str] = request["ExpressionAttributeNames"]
    values: Mapping[str, Any] = request["ExpressionAttributeValues"]
    for name, placeholder in _EQUALS.findall(request["KeyConditionExpression"]):
        if names.get(name, name) == attribute and placeholder in values:
            value: dict[str, Any] = values[placeholder]
            return value
    return None


def encode_page(response: Mapping[str, Any]) -> bytes:
    """What a cached page holds: the answer's fields a caller reads, in stream form."""
    page: dict[str, Any] = {"Count": response["Count"], "ScannedCount": response["ScannedCount"]}
    if "Items" in response:
        page["Items"] = [item_from_python(item) for item in response["Items"]]
    if "LastEvaluatedKey" in response:
        page["LastEvaluatedKey"] = item_from_python(response["LastEvaluatedKey"])
    return orjson.dumps(page)


def decode_page(payload: bytes) -> dict[str, Any]:
    """A cached page as boto3's resource answers it (Decimal, Binary, set), in fresh objects."""
    page: dict[str, Any] = orjson.loads(payload)
    if "Items" in page:
        page["Items"] = [item_to_python(item) for item in page["Items"]]
    if "LastEvaluatedKey" in page:
        page["LastEvaluatedKey"] = item_to_python(page["LastEvaluatedKey"])
    return page
