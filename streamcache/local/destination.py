"""OnFailure destinations for the emulated event source mapping, and reading them back.

A destination is an SQS queue (in the embedded AWS, or any SQS endpoint), an
SNS topic (read back through a queue subscribed to it), or a JSON-lines file,
one OnFailure record per line. Lambda's S3 destination (the whole event under
``payload``) is not emulated. ``read_failures`` reads
either back for ``redrive``, one message at a time; an SQS message is deleted
only once acknowledged (its keys invalidated).

Reading a queue: long polling (``WaitTimeSeconds``), since a short poll may
answer empty while messages wait on other servers; stop after several empty
polls in a row; an explicit visibility timeout that outlasts redriving one
receive's worth of messages (each is deleted right after its keys are done,
so no receipt handle is held for long).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamcache.errors import StreamCacheError
from streamcache.redrive import FailureMessage, FailureRecordError, parse_failure

__all__ = [
    "DestinationError",
    "FailureMessage",
    "FileDestination",
    "MemoryDestination",
    "QueuePolling",
    "SnsDestination",
    "SqsDestination",
    "destination_for",
    "is_queue_url",
    "queue_endpoint",
    "read_failures",
    "sqs_client",
]


class DestinationError(StreamCacheError):
    """The destination cannot be written or read, or holds something that is not an OnFailure record."""


def is_queue_url(target: str) -> bool:
    return target.startswith(("https://", "http://"))


@dataclass(frozen=True)
class QueuePolling:
    """How a queue is drained; the defaults suit a real queue, tests pass smaller waits."""

    wait_s: int = 5  # WaitTimeSeconds: long polling, 1..20
    empty_polls: int = 2  # empty answers in a row before the queue counts as drained
    visibility_timeout_s: int = 300  # covers redriving the up to 10 messages of one receive
    max_messages: int = 10


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


@dataclass
class SnsDestination:
    """An SNS topic: Lambda publishes the OnFailure record as the message."""

    topic_arn: str
    client: Any

    def send(self, payload: dict[str, Any]) -> None:
        self.client.publish(TopicArn=self.topic_arn, Message=json.dumps(payload))


_AWS_SQS_HOST = re.compile(
    r"^(?:sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com)$"
)


def queue_endpoint(queue_url: str) -> tuple[str, str | None]:
    """The SQS endpoint a queue URL names (scheme and host), and its AWS region when the host says it."""
    parts = urlsplit(queue_url)
    match = _AWS_SQS_HOST.match(parts.hostname or "")
    region = (match.group(1) or match.group(2)) if match else None
    return f"{parts.scheme}://{parts.netloc}", region


def sqs_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    from streamcache.aws import client

    if region is None:
        return client("sqs", endpoint_url)
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)


def queue_client(queue_url: str) -> Any:
    """A client for the queue's own endpoint: a queue URL says where the queue lives."""
    return sqs_client(*queue_endpoint(queue_url))


def destination_for(
    target: str, endpoint_url: str | None = None
) -> FileDestination | SqsDestination | SnsDestination:
    """An SNS topic ARN, an SQS queue URL (http(s)://...) or a file path.

    ``endpoint_url`` is the SNS endpoint (a local one, or AWS); a queue URL
    names its own endpoint.
    """
    if target.startswith("arn:aws:sns:"):
        from streamcache.aws import client

        return SnsDestination(target, client("sns", endpoint_url))
    if is_queue_url(target):
        return SqsDestination(target, queue_client(target))
    return FileDestination(Path(target))


def read_failures(
    target: str, *, client: Any = None, polling: QueuePolling | None = None
) -> Iterator[FailureMessage]:
    """Every OnFailure record waiting in a queue or file, one at a time."""
    if is_queue_url(target):
        return _read_queue(target, client or queue_client(target), polling or QueuePolling())
    return iter(_read_file(Path(target)))


def _read_file(path: Path) -> list[FailureMessage]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DestinationError(f"cannot read {str(path)!r}: {err.strerror or err}") from err
    found = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            where = f"{path}:{number}"
            found.append(FailureMessage(_parse(line, where), lambda: None, where))
    return found


def _read_queue(queue_url: str, client: Any, polling: QueuePolling) -> Iterator[FailureMessage]:
    seen: set[str] = set()  # a kept message may come back after its visibility timeout: once per run
    empty = 0
    while empty < polling.empty_polls:
        messages = [m for m in _receive(client, queue_url, polling) if m["MessageId"] not in seen]
        empty = 0 if messages else empty + 1
        for message in messages:
            seen.add(message["MessageId"])
            where = f"message {message['MessageId']}"
            delete = _deleter(client, queue_url, message["ReceiptHandle"])
            yield FailureMessage(_parse(message["Body"], where), delete, where)


def _receive(client: Any, queue_url: str, polling: QueuePolling) -> list[dict[str, Any]]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=polling.max_messages,
            WaitTimeSeconds=polling.wait_s,
            VisibilityTimeout=polling.visibility_timeout_s,
        )
    except ClientError as err:
        error = err.response.get("Error", {})
        raise DestinationError(
            f"queue {queue_url}: {error.get('Code', 'error')}: {error.get('Message') or 'cannot receive'}"
        ) from err
    except BotoCoreError as err:
        raise DestinationError(f"queue {queue_url}: {err}") from err
    return list(response.get("Messages", []))


def _deleter(client: Any, queue_url: str, receipt: str) -> Callable[[], None]:
    def delete() -> None:
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)

    return delete


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return parse_failure(text, where)
    except FailureRecordError as err:
        raise DestinationError(str(err)) from None
