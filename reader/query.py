"""Queries: one partition of a table or an index, answered through the query cache.

Direct invoke::

    {"table": "orders", "query": {"partition": {"pk": "u1"}, "sort": {"sk": [">", 10]},
     "index": "byStatus", "limit": 20, "forward": true, "start": {...}}, "format": "plain"}

HTTP: ``GET /items/{table}/query?pk=u1&sk=gt:10&index=..&limit=20&forward=false&start=<JSON>``
(sort operators ``eq lt le gt ge begins``; ``between`` only in a direct invoke).

Answer: ``{"items": [...], "count", "scanned_count", "last_key": {...} | null,
"source": "cache" | "dynamodb"}``; pass ``last_key`` back as ``start`` for the
next page. Every value is checked against the table's (or index's) key
schema: a mistake is a 400 naming it. Tables not in QUERY_CACHE_TABLES are
answered by DynamoDB. The reader's IAM role needs ``dynamodb:Query`` on the
table and its indexes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from reader.request import RequestError, bad_request, key_value_from_json
from streamcache.codec import Typed, item_to_plain

if TYPE_CHECKING:  # loads boto3: the reader's cold start does not
    from streamcache.read.querying import QueryReads

FIELDS = frozenset({"partition", "sort", "index", "limit", "forward", "start"})
OPERATORS = {"=": "eq", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "begins_with": "begins_with"}
HTTP_OPERATORS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "begins": "begins_with"}
MAX_LIMIT = 1000


def serve(reads: QueryReads, spec: object, fmt: str) -> dict[str, Any]:
    """Check ``spec``, query (cache first), and shape the answer."""
    from botocore.exceptions import ClientError

    kwargs = query_kwargs(reads, spec)
    try:
        response, source = reads.answer(kwargs)
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code == "ValidationException":  # DynamoDB refused the condition (e.g. begins_with on a number)
            raise bad_request(
                f"DynamoDB refused the query: {err.response['Error'].get('Message', code)}"
            ) from err
        raise RequestError(503, f"DynamoDB Query on table {reads.table.name!r} failed ({code})") from err
    return shape(response, source, fmt)


def query_kwargs(reads: QueryReads, spec: object) -> dict[str, Any]:
    """boto3 ``Table.query`` arguments from a checked query spec."""
    from boto3.dynamodb.conditions import Key

    if not isinstance(spec, Mapping):
        raise bad_request(
            "query must be a JSON object with partition (and sort, index, limit, forward, start)"
        )
    extra = sorted(set(spec) - FIELDS)
    if extra:
        raise bad_request(f"unexpected query field {extra[0]!r}; a query has {', '.join(sorted(FIELDS))}")
    layout = reads.layout()
    index = spec.get("index")
    if index is not None and (not isinstance(index, str) or index not in layout.indexes):
        raise bad_request(f"index {index!r} is not an index of table {reads.table.name!r}")
    hash_name, range_name = (layout.hash_name, layout.range_name) if index is None else layout.indexes[index]
    types = _attribute_types(reads)
    name, value = _single(spec.get("partition"), hash_name, "partition")
    condition = Key(name).eq(_python(name, value, types))
    if spec.get("sort") is not None:
        condition = condition & _sort_condition(spec["sort"], range_name, types)
    kwargs: dict[str, Any] = {"KeyConditionExpression": condition}
    if index is not None:
        kwargs["IndexName"] = index
    _options(kwargs, spec, types)
    return kwargs


def _single(raw: object, attribute: str | None, what: str) -> tuple[str, object]:
    if attribute is None:
        raise bad_request(f"this table or index has no sort key; drop {what}")
    if not isinstance(raw, Mapping) or list(raw) != [attribute]:
        raise bad_request(f"{what} must be a JSON object with exactly the key attribute {attribute!r}")
    return attribute, raw[attribute]


def _sort_condition(raw: object, attribute: str | None, types: Mapping[str, str]) -> Any:
    from boto3.dynamodb.conditions import Key

    name, spec = _single(raw, attribute, "sort")
    if not isinstance(spec, list) or not spec or not isinstance(spec[0], str):
        raise bad_request(f'sort.{name} must be [operator, value] like [">", 10] or ["between", 1, 9]')
    op, values = spec[0], spec[1:]
    if op == "between" and len(values) == 2:
        return Key(name).between(_python(name, values[0], types), _python(name, values[1], types))
    if op not in OPERATORS or len(values) != 1:
        raise bad_request(f"sort operator {op!r} is not one of: {', '.join([*OPERATORS, 'between'])}")
    return getattr(Key(name), OPERATORS[op])(_python(name, values[0], types))


def _options(kwargs: dict[str, Any], spec: Mapping[str, Any], types: Mapping[str, str]) -> None:
    limit = spec.get("limit")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise bad_request(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        kwargs["Limit"] = limit
    forward = spec.get("forward")
    if forward is not None:
        if not isinstance(forward, bool):
            raise bad_request("forward must be true or false")
        kwargs["ScanIndexForward"] = forward
    start = spec.get("start")
    if start is not None:
        if not isinstance(start, Mapping) or not start or not set(start) <= set(types):
            raise bad_request("start must be the last_key of the previous page")
        kwargs["ExclusiveStartKey"] = {name: _python(name, value, types) for name, value in start.items()}


def _attribute_types(reads: QueryReads) -> dict[str, str]:
    return {a["AttributeName"]: a["AttributeType"] for a in reads.table.attribute_definitions}


def _python(name: str, raw: object, types: Mapping[str, str]) -> Any:
    """A key value checked like a read's key value, as boto3's resource wants it."""
    from streamcache.read.values import item_to_python

    typed = key_value_from_json(name, raw, types.get(name, "S"))
    return item_to_python({name: typed})[name]


def shape(response: Mapping[str, Any], source: str, fmt: str) -> dict[str, Any]:
    from streamcache.read.values import item_from_python

    def out(item: Mapping[str, Any]) -> Typed:
        typed = item_from_python(item)
        return item_to_plain(typed) if fmt == "plain" else typed

    last = response.get("LastEvaluatedKey")
    return {
        "items": [out(item) for item in response.get("Items", [])],
        "count": response["Count"],
        "scanned_count": response["ScannedCount"],
        "last_key": None if last is None else out(last),
        "source": source,
    }


def spec_from_http(params: Iterable[tuple[str, str]], reads: QueryReads) -> tuple[dict[str, Any], str]:
    """``GET /items/{table}/query``'s parameters as a query spec, and the format."""
    layout = reads.layout()
    values: dict[str, str] = {}
    for name, value in params:
        if name in values:
            raise bad_request(f"query parameter {name!r} is given more than once")
        values[name] = value
    fmt = values.pop("format", "plain")
    spec: dict[str, Any] = {}
    index = values.pop("index", None)
    if index is not None:
        spec["index"] = index
    hash_name, range_name = (
        (layout.hash_name, layout.range_name) if index is None else layout.indexes.get(index, (None, None))
    )
    if hash_name is None:
        raise bad_request(f"index {index!r} is not an index of table {reads.table.name!r}")
    for option in ("limit", "forward", "start"):
        if option in values:
            spec[option] = _http_option(option, values.pop(option))
    if hash_name not in values:
        raise bad_request(f"the partition key {hash_name!r} is missing")
    types = _attribute_types(reads)  # text in a URL: typed by the key schema
    spec["partition"] = {hash_name: {types.get(hash_name, "S"): values.pop(hash_name)}}
    if range_name is not None and range_name in values:
        op, sep, value = values.pop(range_name).partition(":")
        if not sep or op not in HTTP_OPERATORS:
            raise bad_request(f"{range_name}=<op>:<value> with op one of {', '.join(HTTP_OPERATORS)}")
        spec["sort"] = {range_name: [HTTP_OPERATORS[op], {types.get(range_name, "S"): value}]}
    if values:
        raise bad_request(f"unexpected query parameter {sorted(values)[0]!r}")
    return spec, fmt


def _http_option(name: str, raw: str) -> object:
    if name == "forward":
        if raw not in ("true", "false"):
            raise bad_request("forward must be true or false")
        return raw == "true"
    try:
        return json.loads(raw)
    except ValueError as err:
        raise bad_request(f"{name} is not valid JSON") from err
