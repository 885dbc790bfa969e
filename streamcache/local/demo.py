"""``make demo``: the whole loop on one machine, with one deliberate fault.

moto (DynamoDB + Streams + SQS) -> emulated event source mapping -> the
invalidator -> Redis -> the reader, then a check of CONTRACT section 5.1:
every key in Redis matches the table (consistent GetItem) or is absent.

The deliberate fault: the invalidator is wrapped so that it raises whenever
its batch holds one chosen record (the "poison", an update of the item
``poisoned/1``). The mapping bisects down to that record, retries it until
MaximumRetryAttempts is used up, and sends an OnFailure record to an SQS
queue. That key is then stale in Redis - the demo shows it - until
``redrive`` re-reads the range from the stream and invalidates it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamcache import lag
from streamcache.keys import cache_key
from streamcache.local import esm
from streamcache.local.destination import SqsDestination, read_failures, sqs_client
from streamcache.local.embedded import EmbeddedAws, embedded_aws, local_redis, patched_environ
from streamcache.local.inspect import holding
from streamcache.local.redrive import RedriveReport, redrive
from streamcache.local.replay import QUIET_ENV, without_metrics
from streamcache.local.stream import DynamoDBStream, StreamSource, streams_client
from streamcache.local.tables import create_orders_table
from streamcache.schema import KeySchemas

TABLE = "orders"
KEY_NAMES = ("pk", "sk")
QUEUE = "streamcache-invalidator-onfailure"
POISON_KEY = ("poisoned", 1)
# Keys that exercise the key codec: separators, escapes, a 38-digit number, a negative number.
SPECIAL_KEYS = [
    ("a-b", 1),
    ("%", 2),
    ("100%-off", 3),
    ("big", 12345678901234567890123456789012345678),
    ("neg", -7),
]

Say = Callable[[str], None]
Key = tuple[str, int]


@dataclass
class DemoOptions:
    items: int = 300
    verbose: bool = False
    redis: str = "auto"  # auto | redis-server | fakeredis
    batch_size: int = 100
    max_retry_attempts: int = 2


@dataclass
class Outcome:
    writes: Counter[str] = field(default_factory=Counter)
    stats: esm.Stats = field(default_factory=esm.Stats)
    stale_before_redrive: list[str] = field(default_factory=list)
    redrive: RedriveReport = field(default_factory=RedriveReport)
    reads: list[Counter[str]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    keys: int = 0

    @property
    def verified(self) -> bool:
        wrong_answers = sum(reads["wrong answers"] for reads in self.reads)
        return not self.mismatches and self.redrive.ok and not wrong_answers


def typed_key(key: Key) -> dict[str, dict[str, str]]:
    return {"pk": {"S": key[0]}, "sk": {"N": str(key[1])}}


def poisoned(handler: esm.Handler, sequence_number: str) -> esm.Handler:
    """The demo's deliberate fault: ``handler`` raises when its batch holds ``sequence_number``."""

    def wrapped(event: dict[str, Any], context: Any) -> Any:
        if any(r["dynamodb"]["SequenceNumber"] == sequence_number for r in event["Records"]):
            raise RuntimeError(f"deliberate demo fault on record {sequence_number}")
        return handler(event, context)

    return wrapped


def run_demo(options: DemoOptions, say: Say = print) -> int:
    """Run the demo; 0 when the verification holds, 1 otherwise."""
    started = time.monotonic()
    with embedded_aws() as aws, local_redis(options.redis) as redis_:
        say(f"aws:   {aws.description}")
        say(f"redis: {redis_.description}")
        with patched_environ(_handler_env(aws, redis_.url, options.verbose)):
            outcome = _run(options, aws, redis_.url, say)
    _print_summary(outcome, time.monotonic() - started, say)
    return 0 if outcome.verified else 1


def _handler_env(aws: EmbeddedAws, redis_url: str, verbose: bool) -> dict[str, str]:
    env = {
        "REDIS_URL": redis_url,
        "KEY_SCHEMA": json.dumps({TABLE: list(KEY_NAMES)}),
        "TABLE_NAME": TABLE,
        "ALLOWED_TABLES": TABLE,
        "DYNAMODB_ENDPOINT_URL": aws.endpoint_url or "",
        **QUIET_ENV,
    }
    if verbose:
        env.update(POWERTOOLS_LOG_LEVEL="INFO", POWERTOOLS_METRICS_DISABLED="false")
    return env


def _run(options: DemoOptions, aws: EmbeddedAws, redis_url: str, say: Say) -> Outcome:
    import redis

    from streamcache.aws import client as aws_client

    dynamodb = aws_client("dynamodb", aws.endpoint_url)
    source = DynamoDBStream(_create_table(dynamodb), streams_client(aws.endpoint_url))
    queue_url = sqs_client(aws.endpoint_url).create_queue(QueueName=QUEUE)["QueueUrl"]
    outcome = Outcome()
    say(f"[1/5] writing {options.items} items, then updates and deletes, to table {TABLE!r}")
    keys, poison_seq = _write(dynamodb, source, options.items, outcome.writes)
    say(f"      poison record: {poison_seq} (update of {POISON_KEY}); the wrapped invalidator raises on it")
    say("[2/5] event source mapping: delivering the stream to the invalidator")
    outcome.stats = _deliver(
        options, source, SqsDestination(queue_url, sqs_client(aws.endpoint_url)), poison_seq, say
    )
    cache = redis.Redis.from_url(redis_url)
    try:
        outcome.stale_before_redrive = _verify(dynamodb, cache, keys)
        stale = outcome.stale_before_redrive
        say(f"      before redrive: {len(stale)} stale key(s) in Redis: {stale[:5]}")
        say(f"[3/5] redrive from the OnFailure queue {queue_url}")
        outcome.redrive = report = _redrive(aws, queue_url, cache)
        say(f"      {report.invalidated} key(s) invalidated; problems: {report.errors or 'none'}")
        say(f"[4/5] reading {len(keys)} keys through the reader, twice")
        outcome.reads = _read_twice(keys, dynamodb, options.verbose)
        say("[5/5] verifying: every key in Redis matches the table (consistent GetItem) or is absent")
        outcome.mismatches = _verify(dynamodb, cache, keys)
        outcome.keys = len(keys)
    finally:
        cache.close()
    return outcome


def _create_table(dynamodb: Any) -> str:
    return str(create_orders_table(dynamodb)["LatestStreamArn"])


def _write(dynamodb: Any, source: StreamSource, count: int, writes: Counter[str]) -> tuple[list[Key], str]:
    keys: list[Key] = [(f"customer{i % 37}", i) for i in range(max(0, count - len(SPECIAL_KEYS) - 1))]
    keys += [*SPECIAL_KEYS, POISON_KEY]
    for index, key in enumerate(keys):
        item = {**typed_key(key), "qty": {"N": str(index % 9 + 1)}, "status": {"S": "new"}}
        dynamodb.put_item(TableName=TABLE, Item=item)
        writes["puts"] += 1
    _update(dynamodb, POISON_KEY, "shipped")
    writes["updates"] += 1
    poison_seq = _last_sequence_number(source)
    for index, key in enumerate(keys):
        if key == POISON_KEY:
            continue  # never written again: its poisoned update is its latest state
        if index % 11 == 3:
            dynamodb.delete_item(TableName=TABLE, Key=typed_key(key))
            writes["deletes"] += 1
        elif index % 5 == 0 or key in SPECIAL_KEYS:
            _update(dynamodb, key, "shipped")
            writes["updates"] += 1
    return keys, poison_seq


def _update(dynamodb: Any, key: Key, status: str) -> None:
    dynamodb.update_item(
        TableName=TABLE,
        Key=typed_key(key),
        UpdateExpression="SET #s = :s, qty = qty + :one",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}, ":one": {"N": "1"}},
    )


def _last_sequence_number(source: StreamSource) -> str:
    last = ""
    for shard in source.shards():
        iterator: str | None = source.iterator(shard.shard_id, esm.TRIM_HORIZON)
        while iterator is not None:
            page = source.read(iterator, 1000)
            if not page.records:
                break
            last = page.records[-1]["dynamodb"]["SequenceNumber"]
            iterator = page.next_iterator
    return last


def _deliver(
    options: DemoOptions, source: StreamSource, destination: Any, poison_seq: str, say: Say
) -> esm.Stats:
    import invalidator.handler as invalidator_handler

    invalidator_handler.reset()
    config = esm.MappingConfig(
        batch_size=options.batch_size,
        bisect_batch_on_function_error=True,
        report_batch_item_failures=True,
        maximum_retry_attempts=options.max_retry_attempts,
    )
    handler: esm.Handler = invalidator_handler.handler
    if not options.verbose:
        handler = without_metrics(handler, invalidator_handler.metrics)
    handler = poisoned(handler, poison_seq)
    mapping = esm.EventSourceMapping(
        source, handler, config, destination=destination, progress=lambda s: say(f"      {s}")
    )
    try:
        return mapping.run(until_caught_up=True)
    finally:
        invalidator_handler.reset()


def _redrive(aws: EmbeddedAws, queue_url: str, cache: Any) -> RedriveReport:
    failures = read_failures(queue_url, aws.endpoint_url)
    schemas = KeySchemas({TABLE: KEY_NAMES}, None)
    client = streams_client(aws.endpoint_url)
    return redrive(failures, lambda arn: DynamoDBStream(arn, client), cache, schemas)


def _read_twice(keys: list[Key], dynamodb: Any, verbose: bool) -> list[Counter[str]]:
    import reader.handler as reader_handler
    from reader.observe import metrics

    handler = reader_handler.handler if verbose else without_metrics(reader_handler.handler, metrics)
    reader_handler.reset()  # built from this environment, forgotten afterwards
    try:
        return [_read_all(keys, dynamodb, handler) for _ in range(2)]
    finally:
        reader_handler.reset()


def _read_all(keys: list[Key], dynamodb: Any, handler: esm.Handler) -> Counter[str]:
    counts: Counter[str] = Counter()
    for key in keys:
        event = {"table": TABLE, "key": {"pk": key[0], "sk": key[1]}, "format": "dynamodb"}
        answer = handler(event, esm.LambdaContext(function_name="streamcache-reader"))
        counts[answer.get("source", "error")] += 1
        if answer.get("item") != _table_item(dynamodb, key):
            counts["wrong answers"] += 1
    return counts


def _table_item(dynamodb: Any, key: Key) -> dict[str, Any] | None:
    return dynamodb.get_item(TableName=TABLE, Key=typed_key(key), ConsistentRead=True).get("Item")


def _verify(dynamodb: Any, cache: Any, keys: list[Key]) -> list[str]:
    """Keys whose Redis entry disagrees with the table (CONTRACT section 5.1)."""
    bad = []
    for key in keys:
        name = cache_key(TABLE, typed_key(key), KEY_NAMES)
        held = holding(cache, name)
        if held["state"] in ("absent", "invalidated", "lease"):
            continue
        if held["item"] != _table_item(dynamodb, key):
            bad.append(name)
    return bad


def _print_summary(outcome: Outcome, seconds: float, say: Say) -> None:
    stats, writes = outcome.stats, outcome.writes
    lags = stats.lags_ms()
    rows = [
        (
            "writes",
            f"{sum(writes.values())} ({writes['puts']} puts, {writes['updates']} updates, "
            f"{writes['deletes']} deletes)",
        ),
        ("stream records", f"{stats.records_read}"),
        (
            "batches",
            f"{stats.batches} ({stats.invocations} invocations, {stats.function_errors} function errors)",
        ),
        ("bisects / retries", f"{stats.bisects} / {stats.retries}"),
        (
            "sent to destination",
            f"{stats.failures_sent} OnFailure record(s), {stats.records_discarded} record(s)",
        ),
        ("stale before redrive", f"{len(outcome.stale_before_redrive)} key(s)"),
        (
            "redrive",
            f"{outcome.redrive.invalidated} key(s) invalidated from {outcome.redrive.records} record(s)",
        ),
    ]
    for number, reads in enumerate(outcome.reads, start=1):
        rows.append((f"reads, pass {number}", _reads_line(reads)))
    rows.append(
        ("stream lag p50 / p99", f"{lag.percentile(lags, 0.5):.0f} ms / {lag.percentile(lags, 0.99):.0f} ms")
    )
    rows.append(("verification", _verification_line(outcome)))
    rows.append(("time", f"{seconds:.1f} s"))
    say("")
    for label, value in rows:
        say(f"  {label:<22} {value}")


def _reads_line(reads: Counter[str]) -> str:
    line = f"cache hits {reads['cache']}, misses {reads['dynamodb']}"
    others = {k: v for k, v in reads.items() if k not in ("cache", "dynamodb")}
    return line + (f", {others}" if others else "")


def _verification_line(outcome: Outcome) -> str:
    if outcome.verified:
        return f"OK: all {outcome.keys} keys in Redis match the table or are absent"
    problems = outcome.mismatches[:5] + outcome.redrive.errors[:5]
    return f"FAILED: {len(outcome.mismatches)} key(s) disagree with the table; {problems}"
