"""Poison -> OnFailure destination -> redrive -> the key is invalidated (moto + a real redis-server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

import invalidator.handler as invalidator_handler
from streamcache.keys import cache_key
from streamcache.local import esm
from streamcache.local.demo import poisoned, typed_key
from streamcache.local.destination import (
    DestinationError,
    FailureMessage,
    FileDestination,
    QueuePolling,
    queue_endpoint,
    read_failures,
)
from streamcache.local.embedded import embedded_aws
from streamcache.local.inspect import holding
from streamcache.local.redis_server import RedisServer
from streamcache.local.redrive import RedriveReport, redrive, redrive_command
from streamcache.local.stream import DynamoDBStream, stream_arn_of, streams_client
from streamcache.schema import KeySchemas

from .test_stream import table  # noqa: F401  (fixture)


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    invalidator_handler.reset()
    return redis_url


def test_poison_goes_to_the_destination_and_redrive_invalidates_its_key(
    table: Any,  # noqa: F811
    handler_env: str,
    tmp_path: Path,
) -> None:
    # GIVEN three versions of one item, the last one a poison record the invalidator raises on
    key = ("a-b", 1)
    for status in ("new", "paid", "shipped"):
        table.put_item(TableName="orders", Item={**typed_key(key), "status": {"S": status}})
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    (shard,) = stream.shards()
    records = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 10).records
    poison = records[-1]["dynamodb"]["SequenceNumber"]
    destination = FileDestination(tmp_path / "failures.jsonl")
    config = esm.MappingConfig(bisect_batch_on_function_error=True, report_batch_item_failures=True,
                               maximum_retry_attempts=1)  # fmt: skip
    handler = poisoned(invalidator_handler.handler, poison)

    # WHEN the mapping delivers the stream
    stats = esm.EventSourceMapping(stream, handler, config, destination=destination).run()

    # THEN the poison is discarded to the destination and the key is stale ("paid")
    assert stats.failures_sent == 1 and stats.bisects == 2  # 3 -> 1 + 2 -> 1 + 1
    cache = redis.Redis.from_url(handler_env)
    name = cache_key("orders", typed_key(key), ("pk", "sk"))
    assert holding(cache, name)["item"]["status"] == {"S": "paid"}

    # WHEN redrive reads the destination
    failures = read_failures(str(destination.path))
    client = streams_client()
    report = redrive(
        failures, lambda arn: DynamoDBStream(arn, client), cache, KeySchemas({"orders": ("pk", "sk")}, None)
    )

    # THEN the key is invalidated at the poison's version: the next read goes to DynamoDB
    assert report.ok and report.invalidated == 1 and report.keys == [name]
    held = holding(cache, name)
    assert (held["state"], held["version"]) == ("invalidated", poison)
    cache.close()


def test_redrive_leaves_a_newer_entry_alone(table: Any, handler_env: str, tmp_path: Path) -> None:  # noqa: F811
    table.put_item(TableName="orders", Item={**typed_key(("k", 1)), "v": {"S": "1"}})
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    esm.EventSourceMapping(stream, invalidator_handler.handler, esm.STACK_CONFIG).run()
    (shard,) = stream.shards()
    seq = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 10).records[0]["dynamodb"][
        "SequenceNumber"
    ]
    failure = {"DDBStreamBatchInfo": {"shardId": shard.shard_id, "startSequenceNumber": seq,
                                      "endSequenceNumber": seq, "streamArn": stream.arn}}  # fmt: skip
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(failure) + "\n")
    cache = redis.Redis.from_url(handler_env)
    report = redrive(
        read_failures(str(path)), lambda arn: stream, cache, KeySchemas({"orders": ("pk", "sk")}, None)
    )
    assert report.already_newer == 1 and report.invalidated == 0  # same version: already applied
    cache.close()


def test_a_file_that_is_not_onfailure_records_is_named(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"Records": []}\n')
    with pytest.raises(DestinationError, match=r"f.jsonl:1: not a DynamoDB stream OnFailure record"):
        read_failures(str(path))


def test_sqs_destination_round_trip() -> None:
    import boto3

    from streamcache.local.destination import destination_for

    with embedded_aws("in-process"):
        url = boto3.client("sqs").create_queue(QueueName="q")["QueueUrl"]
        info = {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "2", "streamArn": "arn"}
        payload = {"DDBStreamBatchInfo": info}
        destination_for(url).send(payload)
        (message,) = read_failures(url, polling=QUICK)
        assert message.payload == payload
        message.ack()
        assert list(read_failures(url, polling=QUICK)) == []


QUICK = QueuePolling(wait_s=0, empty_polls=1)


def test_sns_destination_reaches_redrive_through_a_subscribed_queue() -> None:
    """AWS: an OnFailure destination may be "Standard Amazon SQS queue or standard Amazon SNS topic";
    a queue subscribed to the topic gets SNS's notification around the record, and redrive unwraps it."""
    import boto3

    from streamcache.local.destination import SnsDestination, destination_for

    with embedded_aws("in-process"):
        sqs, sns = boto3.client("sqs"), boto3.client("sns")
        url = sqs.create_queue(QueueName="from-sns")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        topic = sns.create_topic(Name="onfailure")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        payload = {"DDBStreamBatchInfo": INFO}
        destination = destination_for(topic)
        assert isinstance(destination, SnsDestination)
        destination.send(payload)
        (message,) = read_failures(url, polling=QUICK)
        assert message.payload == payload


INFO = {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "2", "streamArn": "arn"}


class ScriptedQueue:
    """An SQS client whose receive_message answers are scripted; records every call."""

    def __init__(self, *answers: list[str]) -> None:
        body = json.dumps({"DDBStreamBatchInfo": INFO})
        self.answers = [
            [{"MessageId": m, "ReceiptHandle": f"r-{m}", "Body": body} for m in ids] for ids in answers
        ]
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("receive", kwargs))
        return {"Messages": self.answers.pop(0)} if self.answers else {}

    def delete_message(self, **kwargs: Any) -> None:
        self.calls.append(("delete", kwargs))


def test_the_queue_is_long_polled_with_an_explicit_visibility_timeout() -> None:
    """AWS (SQS): "Long polling helps reduce the cost of using Amazon SQS by eliminating the number of
    empty responses (when there are no messages available for a ReceiveMessage request) and false
    empty responses (when messages are available but aren't included in a response)."
    """
    queue = ScriptedQueue(["m1"])
    polling = QueuePolling(wait_s=20, empty_polls=2, visibility_timeout_s=120)
    assert [m.where for m in read_failures("http://q/1/q", client=queue, polling=polling)] == ["message m1"]
    receive = queue.calls[0][1]
    assert (receive["WaitTimeSeconds"], receive["VisibilityTimeout"], receive["MaxNumberOfMessages"]) == (
        20,
        120,
        10,
    )


def test_one_empty_answer_does_not_end_the_drain() -> None:
    # GIVEN a queue whose first answer is a (false) empty one
    queue = ScriptedQueue([], ["m1"], [], ["m2"])
    # WHEN it is drained, stopping after two empty answers in a row
    found = [
        m.where for m in read_failures("http://q/1/q", client=queue, polling=QueuePolling(empty_polls=2))
    ]
    # THEN both messages are read, and it stopped after the 2 empty answers that follow m2
    assert found == ["message m1", "message m2"]
    assert [c[0] for c in queue.calls] == ["receive"] * 6


def test_a_message_that_comes_back_is_handled_once_per_run() -> None:
    queue = ScriptedQueue(["m1"], ["m1"])  # kept, then visible again after its timeout
    found = [
        m.where for m in read_failures("http://q/1/q", client=queue, polling=QueuePolling(empty_polls=1))
    ]
    assert found == ["message m1"]


def test_each_message_is_deleted_right_after_its_keys_are_invalidated(redis_url: str) -> None:
    """A message is deleted as soon as its own range is done, before the next one is redriven,
    so no receipt handle is held while other messages are worked on."""
    from .esm_fakes import FakeClock, FakeStream, raw_record

    clock = FakeClock()
    stream = FakeStream(
        clock, {"s": [raw_record(1, clock.now - 1), raw_record(2, clock.now - 1)]}, closed={"s"}
    )
    queue = ScriptedQueue(["m1", "m2"])
    cache = redis.Redis.from_url(redis_url)

    def open_stream(arn: str) -> FakeStream:
        queue.calls.append(("re-read", {}))
        return stream

    report = redrive(
        read_failures("http://q/1/q", client=queue, polling=QueuePolling(empty_polls=1)),
        open_stream, cache, KeySchemas({"orders": ("pk", "sk")}, None),
    )  # fmt: skip
    assert report.ok and report.acknowledged == 2
    steps = [(c[0], c[1].get("ReceiptHandle")) for c in queue.calls]
    assert steps == [("receive", None), ("re-read", None), ("delete", "r-m1"), ("re-read", None),
                     ("delete", "r-m2"), ("receive", None)]  # fmt: skip
    cache.close()


@pytest.mark.parametrize(
    ("url", "endpoint", "region"),
    [
        ("http://127.0.0.1:4566/000000000000/failures", "http://127.0.0.1:4566", None),
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/failures", "https://sqs.eu-west-1.amazonaws.com",
         "eu-west-1"),
        ("https://ap-south-1.queue.amazonaws.com/123456789012/f", "https://ap-south-1.queue.amazonaws.com",
         "ap-south-1"),
    ],
)  # fmt: skip
def test_a_queue_url_names_its_endpoint_and_region(url: str, endpoint: str, region: str | None) -> None:
    assert queue_endpoint(url) == (endpoint, region)


def test_redrive_reads_the_queue_at_the_queue_urls_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an empty queue on a moto server, and a stream endpoint that refuses connections
    import boto3

    with embedded_aws("server") as aws:
        url = boto3.client("sqs", endpoint_url=aws.endpoint_url).create_queue(QueueName="f")["QueueUrl"]
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
        lines: list[str] = []
        # WHEN redrive reads it, with --endpoint-url pointing elsewhere
        code = redrive_command(url, "http://127.0.0.1:9", lines.append, QueuePolling(wait_s=1, empty_polls=1))
    # THEN the queue was read where its URL says (an empty queue: nothing to do)
    assert code == 0, lines
    assert lines[0] == f"0 OnFailure record(s) in {url}: 0 done, 0 kept"


def test_redrive_of_a_missing_queue_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamcache.cli import main

    with embedded_aws("server") as aws:
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
        code = main(["redrive", f"{aws.endpoint_url}/123456789012/no-such-queue"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no-such-queue" in err and ("NonExistentQueue" in err or "QueueDoesNotExist" in err), err


# --- a failure message is deleted only once its keys are invalidated -----------------


def _one_failure(dynamodb: Any) -> tuple[list[FailureMessage], list[bool]]:
    """One OnFailure record naming the one record in the stream; ``acked`` records each ack()."""
    dynamodb.put_item(TableName="orders", Item={**typed_key(("k", 1)), "v": {"S": "1"}})
    stream = DynamoDBStream(stream_arn_of("orders"), streams_client())
    (shard,) = stream.shards()
    seq = stream.read(stream.iterator(shard.shard_id, "TRIM_HORIZON"), 10).records[0]["dynamodb"][
        "SequenceNumber"
    ]
    info = {"shardId": shard.shard_id, "startSequenceNumber": seq, "endSequenceNumber": seq,
            "streamArn": stream.arn}  # fmt: skip
    acked: list[bool] = []
    return [FailureMessage({"DDBStreamBatchInfo": info}, lambda: acked.append(True))], acked


def _redrive_one(failures: list[FailureMessage], cache: redis.Redis) -> RedriveReport:
    client = streams_client()
    return redrive(
        failures, lambda arn: DynamoDBStream(arn, client), cache, KeySchemas({"orders": ("pk", "sk")}, None)
    )


def test_redrive_with_redis_stopped_keeps_the_message_and_says_why(
    table: Any,  # noqa: F811
    own_redis: RedisServer,
    tmp_path: Path,
) -> None:
    # GIVEN a failure message and a Redis that is not running
    failures, acked = _one_failure(table)
    cache = redis.Redis.from_url(own_redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    own_redis.stop()
    # WHEN redrive runs
    report = _redrive_one(failures, cache)
    # THEN the message is not acknowledged (it is the only record of the keys to invalidate)
    assert acked == []
    assert not report.ok and report.invalidated == 0
    assert any("ConnectionError" in e and "orders-k-1" in e for e in report.errors), report.errors
    cache.close()


def test_redrive_with_a_refused_write_keeps_the_message_and_says_why(
    table: Any,  # noqa: F811
    own_redis: RedisServer,
    tmp_path: Path,
) -> None:
    # GIVEN a Redis that refuses writes (it wants a replica it does not have)
    failures, acked = _one_failure(table)
    cache = redis.Redis.from_url(own_redis.url)
    cache.config_set("min-replicas-to-write", 1)
    # WHEN redrive runs
    report = _redrive_one(failures, cache)
    # THEN the message stays and the report names the key and Redis's refusal
    assert acked == []
    assert not report.ok and report.invalidated == 0
    assert any("orders-k-1" in e and "NOREPLICAS" in e for e in report.errors), report.errors
    cache.close()


def test_redrive_acknowledges_the_message_once_its_keys_are_invalidated(
    table: Any,  # noqa: F811
    own_redis: RedisServer,
    tmp_path: Path,
) -> None:
    failures, acked = _one_failure(table)
    cache = redis.Redis.from_url(own_redis.url)
    report = _redrive_one(failures, cache)
    assert report.ok and report.invalidated == 1 and acked == [True]
    cache.close()
