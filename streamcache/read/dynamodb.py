"""The DynamoDB side of a read: one strongly consistent ``GetItem``.

Consistent, because an eventually consistent read can return the item as it
was before a write whose invalidation already ran: filling that would leave
the cache stale until the next write (CONTRACT section 4, "no stale fill").
"""

from __future__ import annotations

import base64
from typing import Any, Protocol

from streamcache.codec import Typed, item_from_boto3


class Table(Protocol):
    def get(self, table: str, key: Typed) -> Typed | None:
        """The item in stream form, or None when it does not exist."""
        ...


class DynamoTable:
    """``Table`` over a low-level boto3 DynamoDB client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, table: str, key: Typed) -> Typed | None:
        response = self.client.get_item(TableName=table, Key=key_to_boto3(key), ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else item_from_boto3(item)


def key_to_boto3(key: Typed) -> Typed:
    """boto3 wants ``bytes`` for B (it base64-encodes them itself)."""
    return {name: _value(v) for name, v in key.items()}


def _value(value: Typed) -> Typed:
    if "B" in value:
        return {"B": base64.b64decode(value["B"])}
    return value
