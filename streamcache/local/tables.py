"""Create the local tables (embedded moto, DynamoDB Local) the demo, tests and benchmarks use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ORDERS = "orders"
ORDERS_KEYS = (("pk", "S"), ("sk", "N"))


def create_table(
    client: Any, name: str, keys: Sequence[tuple[str, str]], *, stream: bool = True
) -> dict[str, Any]:
    """An on-demand table keyed by ``keys`` ((name, type), hash first); NEW_AND_OLD_IMAGES if ``stream``."""
    extra: dict[str, Any] = {}
    if stream:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    roles = ("HASH", "RANGE")[: len(keys)]
    created: dict[str, Any] = client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": n, "KeyType": r} for (n, _), r in zip(keys, roles, strict=True)],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in keys],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    return dict(created["TableDescription"])


def create_orders_table(client: Any, *, stream: bool = True) -> dict[str, Any]:
    """``orders`` (pk S, sk N): the sample table of events/, the demo and the tests."""
    return create_table(client, ORDERS, ORDERS_KEYS, stream=stream)
