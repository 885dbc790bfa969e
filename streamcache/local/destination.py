"""OnFailure destinations for the emulated event source mapping, and reading them back.

A destination is an SQS queue (in the embedded AWS, or any SQS endpoint) or
a JSON-lines file, one OnFailure record per line. ``failure_source`` reads
either back for ``redrive``; an SQS message is deleted only once acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamcache.errors import StreamCacheError


class DestinationError(StreamCacheError):
    """The destination cannot be written or read, or holds something that is not an OnFailure record."""


def is_queue_url(target: str) -> bool:
    return target.startswith(("https://", "http://"))


@dataclass
class MemoryDestination:
    """Keeps payloads in a list (tests, and the demo's summary)."""

    payloads: list[dict[str, Any]] = field(default_factory=list)

    def send(self, payload: dict[str, Any]) -> None:
        self.payloads.append(payload)


@dataclass
class FileDestination:
    """Appends one JSON document per line."""

    path: Path

    def send(self, payload: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(payload, sort_keys=True) + "\n")


@dataclass
class SqsDestination:
    queue_url: str
    client: Any

    def send(self, payload: dict[str, Any]) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(payload))


def sqs_client(endpoint_url: str | None = None) -> Any:
    from streamcache.aws import client

    return client("sqs", endpoint_url)


def destination_for(target: str, endpoint_url: str | None = None) -> FileDestination | SqsDestination:
    """An SQS queue URL (http(s)://...) or a file path."""
    if is_queue_url(target):
        return SqsDestination(target, sqs_client(endpoint_url))
    return FileDestination(Path(target))


@dataclass
class FailureMessage:
    payload: dict[str, Any]
    ack: Callable[[], None]  # called once the failure has been redriven


def read_failures(target: str, endpoint_url: str | None = None) -> list[FailureMessage]:
    """Every OnFailure record waiting in a queue or file."""
    if is_queue_url(target):
        return _read_queue(target, sqs_client(endpoint_url))
    return _read_file(Path(target))


def _read_file(path: Path) -> list[FailureMessage]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DestinationError(f"cannot read {str(path)!r}: {err.strerror or err}") from err
    found = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            found.append(FailureMessage(_parse(line, f"{path}:{number}"), lambda: None))
    return found


def _read_queue(queue_url: str, client: Any) -> list[FailureMessage]:
    found: list[FailureMessage] = []
    while True:
        response = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = response.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            payload = _parse(message["Body"], f"message {message.get('MessageId')}")
            found.append(FailureMessage(payload, _deleter(client, queue_url, message["ReceiptHandle"])))


def _deleter(client: Any, queue_url: str, receipt: str) -> Callable[[], None]:
    def delete() -> None:
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)

    return delete


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except ValueError:
        raise DestinationError(f"{where}: not JSON") from None
    info = payload.get("DDBStreamBatchInfo") if isinstance(payload, dict) else None
    required = ("shardId", "startSequenceNumber", "endSequenceNumber", "streamArn")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in required):
        raise DestinationError(f"{where}: not a DynamoDB stream OnFailure record (no DDBStreamBatchInfo)")
    return payload
