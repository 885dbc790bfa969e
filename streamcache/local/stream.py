"""The laptop's view of a DynamoDB stream: the core reader (``streamcache.streams``), plus shard order.

Shard lineage: a shard with a ``ParentShardId`` is read only after its parent
is finished (closed and read to its end, or trimmed away), as Lambda does,
so that records of one item are never delivered out of order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Re-exported: the emulator, the tools and the tests import the reader from here.
from streamcache.streams import (
    MAX_GET_RECORDS,
    DataTrimmed,
    DynamoDBStream,
    IteratorExpired,
    Page,
    Shard,
    StreamError,
    StreamSource,
    epoch_seconds,
    lambda_record,
    streams_client,
)

__all__ = [
    "MAX_GET_RECORDS",
    "DataTrimmed",
    "DynamoDBStream",
    "IteratorExpired",
    "Page",
    "Shard",
    "StreamError",
    "StreamSource",
    "epoch_seconds",
    "lambda_record",
    "ready_shards",
    "stream_arn_of",
    "streams_client",
]


def stream_arn_of(table: str, endpoint_url: str | None = None) -> str:
    """The table's latest stream ARN (DescribeTable); ``StreamError`` if it has none."""
    from streamcache.aws import client

    try:
        description = client("dynamodb", endpoint_url).describe_table(TableName=table)["Table"]
    except Exception as err:
        raise StreamError(f"cannot describe table {table!r} ({type(err).__name__}: {err})") from err
    arn = description.get("LatestStreamArn")
    if not arn or not description.get("StreamSpecification", {}).get("StreamEnabled", False):
        raise StreamError(f"table {table!r} has no enabled stream; enable NEW_AND_OLD_IMAGES")
    return str(arn)


def ready_shards(shards: Sequence[Shard], finished: Iterable[str]) -> list[Shard]:
    """Shards that may be read now: not finished, and whose parent is finished or gone.

    A parent that is no longer listed was trimmed (older than the stream's
    24-hour retention): nothing of it is left to read first.
    """
    done = set(finished)
    listed = {s.shard_id for s in shards}
    return [
        s
        for s in shards
        if s.shard_id not in done
        and (s.parent_id is None or s.parent_id in done or s.parent_id not in listed)
    ]
