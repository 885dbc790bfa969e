"""``python -m streamcache generate-event``: sample events for your table (``sam local generate-event``).

Stream events (insert, modify, remove, ttl) are built by ``events.record`` -
the same builder the sample events in ``events/`` and the tests use - so they
have the shape Lambda delivers. Reader events are a direct invoke or a
Function URL request (payload format 2.0) for ``GET /items/{table}?<key>``.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

from streamcache.codec import Typed, value_to_plain
from streamcache.local import events
from streamcache.local.keyargs import KeyArgumentError

STREAM_KINDS = ("insert", "modify", "remove", "ttl")
READER_KINDS = ("reader", "function-url")
KINDS = STREAM_KINDS + READER_KINDS
FUNCTION_URL_DOMAIN = "abcdefghij.lambda-url.us-east-1.on.aws"


def parse_item(text: str | None) -> Typed:
    """``--item``: a plain JSON object (``{"status": "NEW", "total": 19.9}``) as a typed item."""
    if text is None:
        return {}
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as err:
        raise KeyArgumentError(f"--item {text!r} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise KeyArgumentError(f"--item {text!r} must be a JSON object of attributes")
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    try:
        return {name: serializer.serialize(value) for name, value in data.items()}
    except (TypeError, ValueError) as err:
        raise KeyArgumentError(f"--item: {err}") from None


def stream_event(
    kind: str,
    table: str,
    key: Typed,
    item: Typed,
    *,
    sequence: int = events.FIRST_SEQUENCE,
    view: str = "NEW_AND_OLD_IMAGES",
    created: float | None = None,
) -> dict[str, Any]:
    """One-record DynamoDB Streams event: ``kind`` is insert, modify, remove or ttl."""
    image = {**item, **key}  # the key attributes always win: they are the item's identity
    when = float(int(time.time())) if created is None else created  # AWS: whole seconds
    if kind == "insert":
        record = events.record(table, "INSERT", key, sequence, new=image, view=view, created=when)
    elif kind == "modify":
        record = events.record(table, "MODIFY", key, sequence, new=image, old=key, view=view, created=when)
    else:
        record = events.record(
            table, "REMOVE", key, sequence, old=image, view=view, created=when, ttl_expiry=kind == "ttl"
        )
    return events.event([record])


def reader_event(table: str, key: Typed, fmt: str = "plain") -> dict[str, Any]:
    """A direct invoke of the reader: ``{"table", "key", "format"}`` with plain key values."""
    return {
        "table": table,
        "key": {name: value_to_plain(value) for name, value in key.items()},
        "format": fmt,
    }


def function_url_event(table: str, key: Typed, fmt: str | None = None) -> dict[str, Any]:
    """A Function URL request (payload 2.0) for ``GET /items/{table}?<key>``."""
    params = [(name, next(iter(value.values()))) for name, value in key.items()]
    if fmt is not None:
        params.append(("format", fmt))
    return http_event("GET", f"/items/{table}", urlencode(params), FUNCTION_URL_DOMAIN)


def http_event(
    method: str, path: str, query: str, domain: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Payload format 2.0, as a Function URL sends it (``up`` builds its requests with this too)."""
    now = time.time()
    prefix = domain.split(".", 1)[0]
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": domain, **(headers or {})},
        "queryStringParameters": dict(parse_qsl(query, keep_blank_values=True)) or None,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": prefix,
            "domainName": domain,
            "domainPrefix": prefix,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": (headers or {}).get("user-agent", "streamcache"),
            },
            "requestId": f"local-{int(now * 1000)}",
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }


def generate(kind: str, table: str, key: Typed, item: Typed, **options: Any) -> dict[str, Any]:
    if kind in STREAM_KINDS:
        return stream_event(kind, table, key, item, **options)
    if kind == "reader":
        return reader_event(table, key)
    return function_url_event(table, key)
