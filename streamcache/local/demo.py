"""``make demo``: the whole loop on one machine, with one deliberate fault.

moto (DynamoDB + Streams + SQS) -> emulated event source mapping -> the
invalidator -> Redis -> the reader, then a check of convergence (docs/consistency.md):
every key in Redis matches the table (consistent GetItem) or is absent.

The mapping polls the stream in a background thread (4 polls a second, as
Lambda does) while the main thread writes, so the lag figures are those of a
running pipeline, not of a backlog: stream lag is (batch applied -
ApproximateCreationDateTime), invalidation delay is (batch applied - the
write call returned), both on this process's wall clock. moto's
ThreadedMotoServer serves each request on its own thread, so a GetRecords can
run while a write is in flight (one process, though: they share the GIL).

The deliberate fault: the invalidator is wrapped so that it raises whenever
its batch holds one chosen record (the "poison", the only update of the item
``poisoned/1``, recognised by its key and event name because the mapping may
meet it before the writer could learn its sequence number). The mapping
bisects down to that record, retries it until MaximumRetryAttempts is used
up, and sends an OnFailure record to an SQS queue. That key is then stale in
Redis - the demo shows it - until ``redrive`` re-reads the range from the
stream and invalidates it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from streamcache import lag
from streamcache.keys import cache_key
from streamcache.local import esm
from streamcache.local.destination import QueuePolling, SqsDestination, read_failures, sqs_client
from streamcache.local.embedded import EmbeddedAws, embedded_aws, local_redis, patched_environ
from streamcache.local.inspect import holding
from streamcache.local.nearlag import near_staleness_ms
from streamcache.local.poller import (
    FoldedProgress,
    creation_resolution,
    invalidation_delays_ms,
    poll_while_writing,
)
from streamcache.local.redrive import RedriveReport, redrive
from streamcache.local.replay import QUIET_ENV, without_metrics
from streamcache.local.stream import DynamoDBStream, StreamSource, streams_client
from streamcache.local.tables import create_orders_table
from streamcache.ops import sampling
from streamcache.ops.checker import Background, Checker, Report
from streamcache.schema import KeySchemas

TABLE = "orders"
KEY_NAMES = ("pk", "sk")
QUEUE = "streamcache-invalidator-onfailure"
POISON_KEY = ("poisoned", 1)
NEAR_LAG_WRITES = 50  # writes to one probe key, read steadily through a near cache
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
Record = dict[str, Any]
WriteLog = list[tuple[Key, float]]  # (key, wall-clock time the write call returned), in write order


@dataclass
class DemoOptions:
    items: int = 300
    verbose: bool = False
    redis: str = "auto"  # auto | redis-server | fakeredis
    batch_size: int = 100
    max_retry_attempts: int = 2
    # Concurrent batches per shard: above 1 so that concurrent invalidator invocations are exercised.
    parallelization_factor: int = 2


@dataclass
class Outcome:
    writes: Counter[str] = field(default_factory=Counter)
    stats: esm.Stats = field(default_factory=esm.Stats)
    stale_before_redrive: list[str] = field(default_factory=list)
    redrive: RedriveReport = field(default_factory=RedriveReport)
    reads: list[Counter[str]] = field(default_factory=list)
    near_lag_ms: list[float] | None = None  # staleness the near cache adds over Redis; None: off
    mismatches: list[str] = field(default_factory=list)
    keys: int = 0
    invalidation_delays_ms: list[float] = field(default_factory=list)
    consistency: Report | None = None  # the consistency checker's samples

    @property
    def verified(self) -> bool:
        wrong_answers = sum(reads["wrong answers"] for reads in self.reads)
        inconsistent = self.consistency.final_inconsistent if self.consistency else 0
        return not self.mismatches and self.redrive.ok and not wrong_answers and not inconsistent


def typed_key(key: Key) -> dict[str, dict[str, str]]:
    return {"pk": {"S": key[0]}, "sk": {"N": str(key[1])}}


def poisoned(handler: esm.Handler, sequence_number: str) -> esm.Handler:
    """The demo's deliberate fault: ``handler`` raises when its batch holds ``sequence_number``."""
    return poisoned_where(handler, lambda record: _sequence_number(record) == sequence_number)


def poisoned_where(handler: esm.Handler, is_poison: Callable[[Record], bool]) -> esm.Handler:
    """``handler``, raising whenever its batch holds a record ``is_poison`` picks."""

    def wrapped(event: dict[str, Any], context: Any) -> Any:
        for record in event["Records"]:
            if is_poison(record):
                raise RuntimeError(f"deliberate demo fault on record {_sequence_number(record)}")
        return handler(event, context)

    return wrapped


def is_demo_poison(record: Record) -> bool:
    """The update of ``POISON_KEY`` (the demo writes it once, and never again)."""
    return record.get("eventName") == "MODIFY" and record["dynamodb"].get("Keys") == typed_key(POISON_KEY)


def _sequence_number(record: Record) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


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
        # the consistency checker: a fifth of the records, checked 1 s after the invalidator
        sampling.CONSISTENCY_SAMPLE_RATE: "0.2",
        sampling.CONSISTENCY_CHECK_DELAYS: "1",
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
    destination = SqsDestination(queue_url, sqs_client(aws.endpoint_url))
    outcome = Outcome()
    progress = FoldedProgress(say, every_s=0.0 if options.verbose else 1.0)
    mapping = _mapping(options, source, destination, progress)
    sampling.configure(None)  # read this environment's sampling settings
    checker_client = redis.Redis.from_url(redis_url)
    config = sampling.SamplingConfig.from_env()
    background = Background(Checker(checker_client, config), config.delays_s).start()
    try:
        keys, writes = _write_while_delivering(options, dynamodb, mapping, progress, outcome)
    finally:
        outcome.consistency = background.stop()
        checker_client.close()
        sampling.configure(None)
    say(f"      caught up; poison record: {_poison_sequence_number(source)}")
    stream = _stream_keys(source)
    applied = {d.sequence_number: d.applied_s for d in outcome.stats.deliveries}
    outcome.invalidation_delays_ms = invalidation_delays_ms(writes, stream, applied)
    cache = redis.Redis.from_url(redis_url)
    try:
        outcome.stale_before_redrive = _verify(dynamodb, cache, keys)
        stale = outcome.stale_before_redrive
        say(f"      before redrive: {len(stale)} stale key(s) in Redis: {stale[:5]}")
        say(f"[3/5] redrive from the OnFailure queue {queue_url}")
        outcome.redrive = report = _redrive(aws, queue_url, cache)
        say(f"      {report.invalidated} key(s) invalidated; problems: {report.errors or 'none'}")
        say(f"[4/5] reading {len(keys)} keys through the reader, three times")
        outcome.reads = _read_passes(keys, dynamodb, options.verbose)
        outcome.near_lag_ms = near_staleness_ms(redis_url, NEAR_LAG_WRITES)
        say("[5/5] verifying: every key in Redis matches the table (consistent GetItem) or is absent")
        outcome.mismatches = _verify(dynamodb, cache, keys)
        outcome.keys = len(keys)
    finally:
        cache.close()
    return outcome


def _create_table(dynamodb: Any) -> str:
    return str(create_orders_table(dynamodb)["LatestStreamArn"])


def _write_while_delivering(
    options: DemoOptions,
    dynamodb: Any,
    mapping: esm.EventSourceMapping,
    progress: FoldedProgress,
    outcome: Outcome,
) -> tuple[list[Key], WriteLog]:
    """Steps 1 and 2: the mapping polls in a thread while this one writes, then drains."""
    import invalidator.handler as invalidator_handler

    say = progress.say
    say(f"[1/5] writing {options.items} items, then updates and deletes, to table {TABLE!r}")
    say(
        "      meanwhile the event source mapping polls the stream (4 polls/s) and invokes the invalidator"
        f" ({mapping.config.parallelization_factor} concurrent batch(es) per shard)"
    )
    say(f"      poison: the update of {POISON_KEY}; the wrapped invalidator raises on it")
    invalidator_handler.reset()
    writes_done = threading.Event()
    writes: WriteLog = []
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="esm") as pool:
            polling = pool.submit(poll_while_writing, mapping, writes_done)
            started = time.monotonic()
            try:
                keys = _write(dynamodb, options.items, writes, outcome.writes)
            finally:
                writes_done.set()
            say(
                f"[2/5] {len(writes)} writes done in {time.monotonic() - started:.1f} s, "
                f"{mapping.stats.records_delivered} record(s) already delivered; draining the stream"
            )
            outcome.stats = polling.result()
            progress.flush()
    finally:
        invalidator_handler.reset()
    return keys, writes


def _mapping(
    options: DemoOptions, source: StreamSource, destination: Any, progress: esm.Progress
) -> esm.EventSourceMapping:
    import invalidator.handler as invalidator_handler

    config = esm.MappingConfig(
        batch_size=options.batch_size,
        bisect_batch_on_function_error=True,
        report_batch_item_failures=True,
        maximum_retry_attempts=options.max_retry_attempts,
        # --verbose prints each invocation's metrics: Powertools' metric buffer is one per process,
        # so invocations run one at a time there.
        parallelization_factor=1 if options.verbose else options.parallelization_factor,
    )
    handler: esm.Handler = invalidator_handler.handler
    if not options.verbose:
        handler = without_metrics(handler, invalidator_handler.metrics)
    handler = poisoned_where(handler, is_demo_poison)
    return esm.EventSourceMapping(source, handler, config, destination=destination, progress=progress)


def _write(dynamodb: Any, count: int, log: WriteLog, writes: Counter[str]) -> list[Key]:
    keys: list[Key] = [(f"customer{i % 37}", i) for i in range(max(0, count - len(SPECIAL_KEYS) - 1))]
    keys += [*SPECIAL_KEYS, POISON_KEY]
    for index, key in enumerate(keys):
        item = {**typed_key(key), "qty": {"N": str(index % 9 + 1)}, "status": {"S": "new"}}
        dynamodb.put_item(TableName=TABLE, Item=item)
        _logged(log, writes, key, "puts")
    _update(dynamodb, POISON_KEY, "shipped")
    _logged(log, writes, POISON_KEY, "updates")
    for index, key in enumerate(keys):
        if key == POISON_KEY:
            continue  # never written again: its poisoned update is its latest state
        if index % 11 == 3:
            dynamodb.delete_item(TableName=TABLE, Key=typed_key(key))
            _logged(log, writes, key, "deletes")
        elif index % 5 == 0 or key in SPECIAL_KEYS:
            _update(dynamodb, key, "shipped")
            _logged(log, writes, key, "updates")
    return keys


def _logged(log: WriteLog, writes: Counter[str], key: Key, kind: str) -> None:
    log.append((key, time.time()))  # the mapping's clock (esm.Timing) is time.time too
    writes[kind] += 1


def _update(dynamodb: Any, key: Key, status: str) -> None:
    dynamodb.update_item(
        TableName=TABLE,
        Key=typed_key(key),
        UpdateExpression="SET #s = :s, qty = qty + :one",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}, ":one": {"N": "1"}},
    )


def _stream_records(source: StreamSource) -> list[Record]:
    """Every record of every shard, read on an iterator of our own (the mapping keeps its own)."""
    records: list[Record] = []
    for shard in source.shards():
        iterator: str | None = source.iterator(shard.shard_id, esm.TRIM_HORIZON)
        while iterator is not None:
            page = source.read(iterator, 1000)
            if not page.records:
                break
            records.extend(page.records)
            iterator = page.next_iterator
    return records


def _stream_keys(source: StreamSource) -> list[tuple[str, Key]]:
    return [(_sequence_number(r), _demo_key(r["dynamodb"]["Keys"])) for r in _stream_records(source)]


def _demo_key(keys: Mapping[str, Any]) -> Key:
    return (keys["pk"]["S"], int(keys["sk"]["N"]))


def _poison_sequence_number(source: StreamSource) -> str:
    found = [_sequence_number(r) for r in _stream_records(source) if is_demo_poison(r)]
    return found[0] if found else "not in the stream"


def _redrive(aws: EmbeddedAws, queue_url: str, cache: Any) -> RedriveReport:
    # The embedded SQS is one process: a short poll is exact, so one empty answer means drained.
    failures = read_failures(queue_url, polling=QueuePolling(wait_s=0, empty_polls=1))
    schemas = KeySchemas({TABLE: KEY_NAMES}, None)
    client = streams_client(aws.endpoint_url)
    return redrive(failures, lambda arn: DynamoDBStream(arn, client), cache, schemas)


def _read_passes(keys: list[Key], dynamodb: Any, verbose: bool) -> list[Counter[str]]:
    """Three passes: misses fill Redis, then hits from Redis, then hits from the near cache."""
    import reader.handler as reader_handler
    from reader.observe import metrics
    from reader.runtime import built

    handler = reader_handler.handler if verbose else without_metrics(reader_handler.handler, metrics)
    reader_handler.reset()  # built from this environment, forgotten afterwards
    try:
        passes = []
        near_hits = 0
        for _ in range(3):
            reads = _read_all(keys, dynamodb, handler)
            near = _near_of(built())
            if near is not None:
                reads["from memory"] = near.counters.hits - near_hits
                near_hits = near.counters.hits
            passes.append(reads)
        return passes
    finally:
        reader_handler.reset()


def _near_of(runtime: Any) -> Any:
    return runtime.cache.near if runtime is not None else None


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
    """Keys whose Redis entry disagrees with the table (convergence, docs/consistency.md)."""
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
    rows.append(("near cache lag p50/p99", _near_line(outcome.near_lag_ms)))
    rows.append(("stream lag p50 / p99", f"{_p50_p99(lags)} ({creation_resolution(stats.deliveries)})"))
    rows.append(
        ("invalidation p50 / p99", f"{_p50_p99(outcome.invalidation_delays_ms)} (after the write returned)")
    )
    rows.append(("verification", _verification_line(outcome)))
    if outcome.consistency is not None:
        rows.append(("consistency checker", _consistency_line(outcome.consistency)))
    rows.append(("time", f"{seconds:.1f} s"))
    say("")
    for label, value in rows:
        say(f"  {label:<22} {value}")


def _near_line(delays_ms: list[float] | None) -> str:
    if delays_ms is None:
        return "near cache off (this Redis has no client tracking)"
    p50, p99 = lag.percentile(delays_ms, 0.5), lag.percentile(delays_ms, 0.99)
    return f"{p50:.2f} ms / {p99:.2f} ms over Redis ({len(delays_ms)} writes, bound 100 ms)"


def _p50_p99(values_ms: Sequence[float]) -> str:
    return f"{lag.percentile(values_ms, 0.5):.0f} ms / {lag.percentile(values_ms, 0.99):.0f} ms"


def _reads_line(reads: Counter[str]) -> str:
    line = f"cache hits {reads['cache']}, misses {reads['dynamodb']}"
    if "from memory" in reads:
        line += f" ({reads['from memory']} of the hits from the near cache)"
    others = {k: v for k, v in reads.items() if k not in ("cache", "dynamodb", "from memory")}
    return line + (f", {others}" if others else "")


def _verification_line(outcome: Outcome) -> str:
    if outcome.verified:
        return f"OK: all {outcome.keys} keys in Redis match the table or are absent"
    problems = outcome.mismatches[:5] + outcome.redrive.errors[:5]
    return f"FAILED: {len(outcome.mismatches)} key(s) disagree with the table; {problems}"


def _consistency_line(report: Report) -> str:
    checked, bad = report.final_checked, report.final_inconsistent
    line = f"{checked - bad} of {checked} sampled writes consistent after {report.delays_s[-1]} s"
    return line + (f"; inconsistent: {[f.sample.key for f in report.findings][:5]}" if bad else "")
