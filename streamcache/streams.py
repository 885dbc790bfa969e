"""Read a DynamoDB stream through the Streams API: DescribeStream, GetShardIterator, GetRecords.

Shipped in the function zips (the redriver re-reads failed ranges with it)
as well as used by the laptop's event source mapping emulator. Works against
moto, DynamoDB Local or real AWS. Records come back the way the Streams API
gives them; ``lambda_record`` turns one into the shape Lambda puts in its
event. boto3 is imported only when a client is made.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from streamcache import lag
from streamcache.errors import StreamCacheError

# GetRecords returns at most 1000 records per call.
MAX_GET_RECORDS = 1000


class StreamError(StreamCacheError):
    """The stream cannot be found or read (no stream on the table, bad endpoint...)."""


class IteratorExpired(StreamError):
    """``ExpiredIteratorException``: a shard iterator is valid for 15 minutes after it is returned."""


class DataTrimmed(StreamError):
    """``TrimmedDataAccessException``: the position asked for is older than the stream's 24-hour retention."""


# The Streams API's error codes the reader recovers from, and what each becomes.
_RECOVERABLE = {"ExpiredIteratorException": IteratorExpired, "TrimmedDataAccessException": DataTrimmed}


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_id: str | None
    closed: bool  # has an EndingSequenceNumber: no records will be added


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next_iterator: str | None  # None: the shard is closed and fully read


class StreamSource(Protocol):
    """What the event source mapping needs from a stream (a real one, or a fake in tests)."""

    arn: str

    def shards(self) -> list[Shard]: ...

    def iterator(self, shard_id: str, kind: str, sequence_number: str | None = None) -> str: ...

    def read(self, iterator: str, limit: int) -> Page: ...


def streams_client(endpoint_url: str | None = None) -> Any:
    """A ``dynamodbstreams`` client.

    botocore >= 1.40 resolves account-based endpoints unless told not to; the
    Streams API has none, so ``account_id_endpoint_mode`` is disabled here.
    """
    import boto3
    from botocore.config import Config

    from streamcache.aws import region  # AWS_REGION too: botocore alone reads only AWS_DEFAULT_REGION

    config = Config(
        account_id_endpoint_mode="disabled",
        connect_timeout=2,
        read_timeout=10,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client("dynamodbstreams", endpoint_url=endpoint_url, region_name=region(), config=config)


class DynamoDBStream:
    """A ``StreamSource`` over boto3's ``dynamodbstreams`` client."""

    def __init__(self, arn: str, client: Any) -> None:
        self.arn = arn
        self._client = client

    def shards(self) -> list[Shard]:
        found: list[Shard] = []
        start: dict[str, str] = {}
        while True:
            description = self._client.describe_stream(StreamArn=self.arn, **start)["StreamDescription"]
            found.extend(_shard(s) for s in description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return found
            start = {"ExclusiveStartShardId": last}

    def iterator(self, shard_id: str, kind: str, sequence_number: str | None = None) -> str:
        extra = {} if sequence_number is None else {"SequenceNumber": sequence_number}
        with _recoverable_errors():
            response = self._client.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard_id, ShardIteratorType=kind, **extra
            )
        return str(response["ShardIterator"])

    def read(self, iterator: str, limit: int) -> Page:
        with _recoverable_errors():
            response = self._client.get_records(ShardIterator=iterator, Limit=min(limit, MAX_GET_RECORDS))
        return Page(list(response.get("Records", [])), response.get("NextShardIterator"))


@contextmanager
def _recoverable_errors() -> Iterator[None]:
    """botocore's ClientError for an expired iterator or trimmed data, as the reader's own exceptions."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in _RECOVERABLE:
            raise _RECOVERABLE[code](f"{code}: {err}") from err
        raise


def _shard(raw: Mapping[str, Any]) -> Shard:
    ending = raw.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
    return Shard(raw["ShardId"], raw.get("ParentShardId"), ending is not None)


def lambda_record(raw: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One GetRecords record as Lambda delivers it.

    Lambda adds ``eventSourceARN`` and gives ``ApproximateCreationDateTime`` as
    epoch seconds (boto3 parses it into a datetime; some emulators give ms).
    Lambda's event is JSON: binary values are base64 text where boto3 gives
    bytes, so the record is exactly what ``json.loads`` of Lambda's payload gives.
    Field order follows a real event; ``userIdentity`` only when present.
    """
    dynamodb = dict(raw["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if created is not None:
        dynamodb["ApproximateCreationDateTime"] = epoch_seconds(created)
    for image in _IMAGES:
        if image in dynamodb:
            dynamodb[image] = {name: json_attribute(v) for name, v in dynamodb[image].items()}
    record: dict[str, Any] = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": raw.get("eventSource", "aws:dynamodb"),
        "awsRegion": raw.get("awsRegion"),
        "dynamodb": {k: dynamodb[k] for k in _DYNAMODB_FIELDS if k in dynamodb},
        "eventSourceARN": stream_arn,
    }
    if raw.get("userIdentity"):
        record["userIdentity"] = dict(raw["userIdentity"])
    return record


_IMAGES = ("Keys", "NewImage", "OldImage")


def json_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """One typed attribute value in the JSON form Lambda delivers: B and BS as base64 text, M and L walked."""
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": _base64(inner)}
    if kind == "BS":
        return {"BS": [_base64(b) for b in inner]}
    if kind == "M":
        return {"M": {name: json_attribute(v) for name, v in inner.items()}}
    if kind == "L":
        return {"L": [json_attribute(v) for v in inner]}
    return {kind: inner}


def _base64(raw: object) -> object:
    """bytes (boto3) -> standard base64 text; text is already the event's form."""
    return base64.b64encode(raw).decode("ascii") if isinstance(raw, (bytes, bytearray)) else raw


_DYNAMODB_FIELDS = (
    "ApproximateCreationDateTime",
    "Keys",
    "NewImage",
    "OldImage",
    "SequenceNumber",
    "SizeBytes",
    "StreamViewType",
)


def epoch_seconds(value: object) -> float:
    """A datetime, or epoch seconds / milliseconds, as epoch seconds."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    seconds = lag.epoch_seconds(value)
    if seconds is not None:
        return seconds
    raise StreamError(f"ApproximateCreationDateTime {value!r} is not a time")
