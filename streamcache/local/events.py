"""Build DynamoDB stream records and Lambda events the way Lambda delivers them.

Used by the sample events, the tests and the benchmarks, so that all of them
exercise the same shapes as the invalidator receives.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
FIRST_SEQUENCE = 1100000000017454423009  # where moto's stream sequence numbers start

Typed = dict[str, Any]


def stream_arn(table: str, label: str = "2026-11-25T00:00:00.000") -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/{label}"


def record(
    table: str,
    event: str,
    keys: Mapping[str, Typed],
    sequence: int | str,
    *,
    new: Typed | None = None,
    old: Typed | None = None,
    view: str = "NEW_AND_OLD_IMAGES",
    created: float | None = None,
    ttl_expiry: bool = False,
) -> dict[str, Any]:
    """One stream record. Images are included as the stream view type would."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": time.time() if created is None else created,
        "Keys": dict(keys),
        "SequenceNumber": str(sequence),
        "SizeBytes": 100,
        "StreamViewType": view,
    }
    if new is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        dynamodb["NewImage"] = new
    if old is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        dynamodb["OldImage"] = old
    result: dict[str, Any] = {
        "eventID": f"{int(sequence):x}",
        "eventName": event,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn(table),
    }
    if ttl_expiry:
        result["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return result


def event(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def sequence_numbers(start: int = FIRST_SEQUENCE, step: int = 100) -> Iterable[int]:
    return itertools.count(start, step)


def item(keys: Mapping[str, Typed], **attributes: Typed) -> Typed:
    """A typed item: its key attributes plus ``attributes``."""
    return {**keys, **attributes}


# The key schema of the tables the sample events in events/ use. Local tools
# (replay, demo) fall back to it when KEY_SCHEMA is not set.
SAMPLE_KEY_SCHEMA: dict[str, list[str]] = {"orders": ["pk", "sk"], "attachments": ["id"]}
