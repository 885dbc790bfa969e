"""An event source mapping emulator: a DynamoDB stream -> a handler, with Lambda's semantics.

The stream (``StreamSource``), the handler, the OnFailure destination and the
clock/sleep are injected, so the rules below run in tests without AWS and
without sleeping. Each rule follows the AWS Lambda developer guide wording:

- Batching: up to ``BatchSize`` records (1-10,000) per invocation; with a
  ``MaximumBatchingWindowInSeconds`` > 0 records are gathered until the batch
  is full or the window has passed. Shards are read in order; a child shard
  only after its parent is finished.
- ReportBatchItemFailures ("Configuring partial batch response with DynamoDB
  and Lambda"): an empty or null ``batchItemFailures`` (or an empty / null
  response, or - observed - ``[]``) is complete success; Lambda checkpoints
  before the lowest reported sequence number and retries from there. An
  empty or null ``itemIdentifier``, a wrong key name (we also count an
  identifier that is not in the batch, or any other shape) is a complete
  failure. Without ReportBatchItemFailures the response is ignored.
- Retry accounting after a partial failure (observed on AWS, not
  documented): the records from the checkpoint on are a new batch - its
  first invocation is no retry, and its retries and approximateInvokeCount
  start at zero. A response that reports the batch's first record (nothing
  checkpointed) is a retry.
- BisectBatchOnFunctionError: when the invocation fails (the handler raises,
  or the response means complete failure) the batch is split in two and each
  half is retried, whatever the ReportBatchItemFailures setting. When a
  partial response comes back, the batch is split at the returned sequence
  number and only the remaining records are retried. "Splitting a batch does
  not count towards the retry quota": a split costs no retry, and both halves
  inherit the retries their parent had already used (so no record is retried
  more than MaximumRetryAttempts times, however often it is bisected).
- MaximumRetryAttempts (-1 infinite, 0-10,000): a failed batch that cannot be
  split (one record, or bisect off, or a partial response) is retried; once
  its retries are used up its records are discarded: an OnFailure record
  (condition ``RetryAttemptsExhausted``) goes to the destination and the
  shard moves on.
- MaximumRecordAgeInSeconds (-1 infinite, 60-604,800): before every
  invocation, records older than this are discarded (condition
  ``RecordAgeExceeded``).
- Reading (assumed, not documented for Lambda): an empty GetRecords page
  does not mean caught up ("it might take multiple calls to get to a portion
  of the shard that contains stream records"): a run "until caught up" ends
  only after ``EMPTY_PAGES_CAUGHT_UP`` empty pages in a row on every open
  shard. An expired iterator (15 minutes) is re-acquired after the last
  record read; trimmed data (24-hour retention) restarts at TRIM_HORIZON.
- StartingPosition is required by Lambda (no default); ``MappingConfig``
  defaults to TRIM_HORIZON, the stack's value.
- OnFailure payload: Lambda's invocation record for streams - metadata and
  ``DDBStreamBatchInfo`` (shard, first and last sequence numbers, arrival
  times, batch size, stream ARN), never the records themselves.
- FilterCriteria (``streamcache.local.filters``): records no filter matches
  are dropped as they are read and checkpointed without an invocation.
- ParallelizationFactor (1-10): records are read up to BatchSize x factor
  at a time and split into that many lanes by item (``Keys``), each lane
  delivering its batches in order on its own thread ("Lambda still ensures
  in-order processing at the item (partition and sort key) level"). The
  round waits for every lane before reading on (assumed; AWS does not say).

Not emulated: tumbling windows, the 6 MB payload limit, Lambda's retry
back-off (``Timing.retry_delay_s`` stands in). docs/emulator.md marks each
rule documented, observed or assumed.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamcache import lag
from streamcache.errors import ConfigError
from streamcache.local.filters import FilterCriteria
from streamcache.local.stream import (
    DataTrimmed,
    IteratorExpired,
    Shard,
    StreamError,
    StreamSource,
    lambda_record,
    ready_shards,
)

TRIM_HORIZON = "TRIM_HORIZON"
LATEST = "LATEST"
AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"

# Empty GetRecords pages in a row, on every open shard, before a run "until caught up" ends: the
# Streams API may return an empty page while records are still ahead in the shard.
EMPTY_PAGES_CAUGHT_UP = 3

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"

DEFAULT_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:streamcache-invalidator"

Handler = Callable[[dict[str, Any], Any], Any]
Progress = Callable[[str], None]


def lane_of(record: Mapping[str, Any], lanes: int) -> int:
    """Which of ``lanes`` concurrent batch streams an item's records go to: the same one, always."""
    item = json.dumps(record["dynamodb"].get("Keys", {}), sort_keys=True).encode()
    return zlib.crc32(item) % lanes


class Destination(Protocol):
    def send(self, payload: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class MappingConfig:
    """The event source mapping's parameters; defaults are Lambda's own defaults."""

    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    bisect_batch_on_function_error: bool = False
    report_batch_item_failures: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    starting_position: str = TRIM_HORIZON
    function_arn: str = DEFAULT_FUNCTION_ARN
    filters: tuple[str, ...] = ()  # FilterCriteria.Filters[].Pattern, JSON strings as Lambda takes them
    parallelization_factor: int = 1  # concurrent batches per shard, 1..10

    def __post_init__(self) -> None:
        FilterCriteria.parse(self.filters)  # a bad pattern fails here, as CreateEventSourceMapping would
        _check_range("BatchSize", self.batch_size, 1, 10_000)
        _check_range("MaximumBatchingWindowInSeconds", self.maximum_batching_window_s, 0, 300)
        if self.maximum_retry_attempts != -1:
            _check_range("MaximumRetryAttempts", self.maximum_retry_attempts, 0, 10_000, "or -1 (infinite)")
        if self.maximum_record_age_s != -1:
            _check_range(
                "MaximumRecordAgeInSeconds", self.maximum_record_age_s, 60, 604_800, "or -1 (infinite)"
            )
        _check_range("ParallelizationFactor", self.parallelization_factor, 1, 10)
        if self.starting_position not in (TRIM_HORIZON, LATEST):
            raise ConfigError(f"StartingPosition {self.starting_position!r} must be TRIM_HORIZON or LATEST")


def _check_range(name: str, value: float, low: float, high: float, extra: str = "") -> None:
    if isinstance(value, bool) or not low <= value <= high:
        suffix = f" {extra}" if extra else ""
        raise ConfigError(f"{name}={value!r} is out of range: use {low}..{high}{suffix}")


# What the CloudFormation stack deploys (infra/cloudformation.json defaults).
STACK_CONFIG = MappingConfig(
    batch_size=100,
    bisect_batch_on_function_error=True,
    report_batch_item_failures=True,
    maximum_retry_attempts=10,
)


@dataclass
class Timing:
    """Clock and sleep, injectable so tests never sleep for real."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    poll_interval_s: float = 0.25  # Lambda polls a shard 4 times per second
    retry_delay_s: float = 0.0


@dataclass(frozen=True)
class Delivery:
    """One record applied: when it was written and when its batch came back successful."""

    sequence_number: str
    created_s: float | None
    applied_s: float

    @property
    def lag_ms(self) -> float | None:
        return None if self.created_s is None else max(0.0, (self.applied_s - self.created_s) * 1000.0)


@dataclass
class Stats:
    batches: int = 0  # batches built from the stream (bisected halves and retries not counted)
    invocations: int = 0
    function_errors: int = 0  # invocations where the handler raised
    failed_responses: int = 0  # invocations whose response reported failures
    bisects: int = 0
    retries: int = 0
    records_read: int = 0
    records_delivered: int = 0  # records in a successful invocation (checkpointed)
    records_discarded: int = 0
    records_filtered: int = 0  # dropped by FilterCriteria: checkpointed, never delivered
    failures_sent: int = 0  # OnFailure records sent to the destination
    deliveries: list[Delivery] = field(default_factory=list)

    def lags_ms(self) -> list[float]:
        return [d.lag_ms for d in self.deliveries if d.lag_ms is not None]


@dataclass(frozen=True)
class Verdict:
    """How Lambda reads one invocation's outcome."""

    failed_from: int | None  # index of the first record to retry; None = complete success
    whole_batch: bool  # an error or a response meaning complete failure (may bisect)
    function_error: str | None  # "Unhandled" when the handler raised
    why: str


SUCCESS = Verdict(None, False, None, "ok")


def judge(response: object, sequence_numbers: Sequence[str], report_enabled: bool) -> Verdict:
    """Read a handler's return value the way Lambda does (no exception was raised).

    Documented (partial batch response page): an empty or null
    ``batchItemFailures``, or an empty or null response, is complete success;
    an empty-string or null ``itemIdentifier``, or a wrongly named key, is
    complete failure. Observed (a recorded AWS run, and LocalStack's
    AWS-validated tests): an empty list ``[]`` is success; a non-string
    ``itemIdentifier`` (a number) is failure. Assumed: any other shape (a
    non-empty list, a string, a number, an identifier not in the batch) is
    complete failure, the safe reading.
    """
    if not report_enabled or response is None or response == []:
        return SUCCESS
    if not isinstance(response, dict):
        return Verdict(0, True, None, f"response is a {type(response).__name__}, not an object")
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return SUCCESS
    if not isinstance(failures, list):
        return Verdict(0, True, None, "batchItemFailures is not a list")
    positions = {seq: i for i, seq in enumerate(sequence_numbers)}
    indexes = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return Verdict(0, True, None, f"itemIdentifier {identifier!r} is empty, null or not in the batch")
        indexes.append(positions[identifier])
    first = min(indexes)
    return Verdict(first, False, None, f"reported failure from {sequence_numbers[first]}")


def failure_record(
    records: Sequence[dict[str, Any]],
    *,
    condition: str,
    invoke_count: int,
    function_error: str | None,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    now: float,
) -> dict[str, Any]:
    """Lambda's OnFailure invocation record for a DynamoDB stream batch."""
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": function_error},
        "version": "1.0",
        "timestamp": _iso(now, millis=True),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _iso(lag.creation_seconds(records[0]) or now),
            "approximateArrivalOfLastRecord": _iso(lag.creation_seconds(records[-1]) or now),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def _iso(epoch: float, millis: bool = False) -> str:
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Attempt:
    """Records on their way through retries and bisects."""

    records: list[dict[str, Any]]
    retries: int = 0  # retries used so far (inherited by bisected halves)
    invocations: int = 0  # invocations that carried these records


@dataclass
class LambdaContext:
    """Enough of Lambda's context object for handlers run in-process."""

    function_name: str = "streamcache-invalidator"
    invoked_function_arn: str = DEFAULT_FUNCTION_ARN
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class ShardReader:
    """One shard's iterator and the records read from it but not yet delivered.

    An expired iterator is re-acquired after the last record read (the
    records before it are delivered or held in ``buffer``), or at the
    mapping's starting position when nothing was read yet; trimmed data
    restarts at TRIM_HORIZON, the oldest record still there.
    """

    def __init__(
        self,
        source: StreamSource,
        shard: Shard,
        position: str,
        say: Progress | None = None,
        keep: Callable[[dict[str, Any]], bool] = lambda record: True,
    ) -> None:
        self.shard = shard
        self.filtered = 0  # records read that FilterCriteria dropped
        self._keep = keep
        self.buffer: deque[dict[str, Any]] = deque()
        self.exhausted = False  # closed and read to its end
        self.empty_pages = 0  # consecutive GetRecords calls that returned nothing
        self._source = source
        self._position = position
        self._iterator: str | None = None
        self._last_read: str | None = None
        self._say = say or (lambda line: None)

    @property
    def finished(self) -> bool:
        return self.exhausted and not self.buffer

    def idle(self, empty_pages: int) -> bool:
        """Nothing buffered, and the shard is read to its end or gave ``empty_pages`` empty pages in a row."""
        return self.finished or (not self.buffer and self.empty_pages >= empty_pages)

    def fill(self, want: int) -> int:
        """One GetRecords call (two if the iterator had to be re-acquired); how many records it read.

        Records the filters drop are not buffered, but reading moves past them:
        they are checkpointed without an invocation.
        """
        if self.exhausted:
            return 0
        try:
            page = self._source.read(self._current_iterator(), want)
        except (IteratorExpired, DataTrimmed) as err:
            self._recover(err)
            page = self._source.read(self._current_iterator(), want)
        records = [lambda_record(r, self._source.arn) for r in page.records]
        kept = [r for r in records if self._keep(r)]
        self.buffer.extend(kept)
        self.filtered += len(records) - len(kept)
        if records:
            self._last_read = records[-1]["dynamodb"]["SequenceNumber"]
        self._iterator = page.next_iterator
        self.exhausted = page.next_iterator is None
        self.empty_pages = 0 if records else self.empty_pages + 1
        return len(records)

    def take(self, count: int) -> list[dict[str, Any]]:
        return [self.buffer.popleft() for _ in range(min(count, len(self.buffer)))]

    def _current_iterator(self) -> str:
        if self._iterator is None:
            self._iterator = self._acquire()
        return self._iterator

    def _acquire(self) -> str:
        shard_id = self.shard.shard_id
        if self._last_read is None:
            return self._source.iterator(shard_id, self._position)
        try:
            return self._source.iterator(shard_id, AFTER_SEQUENCE_NUMBER, self._last_read)
        except DataTrimmed as err:
            self._recover(err)
            return self._source.iterator(shard_id, TRIM_HORIZON)

    def _recover(self, err: StreamError) -> None:
        self._iterator = None
        shard_id = self.shard.shard_id
        if isinstance(err, DataTrimmed):
            # The checkpoint fell out of the stream's retention: what was there is gone for good.
            self._last_read, self._position = None, TRIM_HORIZON
            self._say(f"{shard_id}: {type(err).__name__}: data trimmed -> re-reading from TRIM_HORIZON")
        else:
            after = "the starting position" if self._last_read is None else f"after {self._last_read}"
            self._say(f"{shard_id}: {type(err).__name__}: iterator expired -> re-acquired {after}")


class EventSourceMapping:
    """Polls every shard of ``source`` and invokes ``handler`` with Lambda's semantics."""

    def __init__(
        self,
        source: StreamSource,
        handler: Handler,
        config: MappingConfig = STACK_CONFIG,
        *,
        destination: Destination | None = None,
        timing: Timing | None = None,
        progress: Progress | None = None,
        empty_pages_caught_up: int = EMPTY_PAGES_CAUGHT_UP,
    ) -> None:
        self.source = source
        self.empty_pages_caught_up = empty_pages_caught_up
        self._lock = threading.RLock()
        self._filters = FilterCriteria.parse(config.filters)
        self.handler = handler
        self.config = config
        self.destination = destination
        self.timing = timing or Timing()
        self.stats = Stats()
        self._progress = progress or (lambda line: None)
        self._readers: dict[str, ShardReader] = {}
        self._finished: set[str] = set()
        self._initial_shards: set[str] | None = None

    def run(self, until_caught_up: bool = True, stop: Callable[[], bool] = lambda: False) -> Stats:
        """Deliver the stream; return when caught up (if asked) or when ``stop()`` is true."""
        while not stop():
            progressed = self.poll_once(stop)
            if progressed:
                continue
            if until_caught_up and self.caught_up():
                break
            self.timing.sleep(self.timing.poll_interval_s)
        return self.stats

    def caught_up(self) -> bool:
        """Every readable shard is read to its end, or gave ``empty_pages_caught_up`` empty pages in a row.

        One empty page is not enough: GetRecords on an open shard can answer
        nothing while records lie further on ("it might take multiple calls").
        """
        if self._initial_shards is None:
            return False  # never polled
        shards = ready_shards(self.source.shards(), self._finished)
        return all(self._reader(s).idle(self.empty_pages_caught_up) for s in shards)

    def poll_once(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Read every ready shard until it is caught up; True if anything happened."""
        shards = self.source.shards()
        if self._initial_shards is None:
            self._initial_shards = {s.shard_id for s in shards}
        progressed = False
        for shard in ready_shards(shards, self._finished):
            reader = self._reader(shard)
            progressed |= self._drain(reader, stop)
            if reader.finished:
                self._finished.add(shard.shard_id)
                progressed = True
        return progressed

    def _reader(self, shard: Shard) -> ShardReader:
        reader = self._readers.get(shard.shard_id)
        if reader is None:
            # Only shards open when the mapping started use LATEST; new (child) shards start at the beginning.
            initial = self._initial_shards is not None and shard.shard_id in self._initial_shards
            position = self.config.starting_position if initial else TRIM_HORIZON
            reader = ShardReader(self.source, shard, position, self._say, self._filters.matches)
            self._readers[shard.shard_id] = reader
        return reader

    def _drain(self, reader: ShardReader, stop: Callable[[], bool]) -> bool:
        delivered = False
        factor = self.config.parallelization_factor
        while not stop():
            records = self._next_batch(reader, self.config.batch_size * factor)
            if not records:
                return delivered
            if factor == 1:
                self.deliver(reader.shard.shard_id, records)
            else:
                self._deliver_concurrently(reader.shard.shard_id, records)
            delivered = True
        return delivered

    def _deliver_concurrently(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """ParallelizationFactor > 1: up to that many batches of one shard in flight at once.

        "Lambda still ensures in-order processing at the item (partition and
        sort key) level": every record of an item goes to the same lane (by its
        ``Keys``), and a lane delivers its batches one after another.
        """
        factor = self.config.parallelization_factor
        lanes: list[list[dict[str, Any]]] = [[] for _ in range(factor)]
        for record in records:
            lanes[lane_of(record, factor)].append(record)
        size = self.config.batch_size
        work = [[lane[i : i + size] for i in range(0, len(lane), size)] for lane in lanes if lane]
        with ThreadPoolExecutor(max_workers=factor, thread_name_prefix=f"esm-{shard_id}") as pool:
            for done in [pool.submit(self._deliver_lane, shard_id, batches) for batches in work]:
                done.result()  # re-raise what a lane could not handle (a destination that failed...)

    def _deliver_lane(self, shard_id: str, batches: list[list[dict[str, Any]]]) -> None:
        for batch in batches:
            self.deliver(shard_id, batch)

    def _next_batch(self, reader: ShardReader, size: int) -> list[dict[str, Any]]:
        deadline = self.timing.clock() + self.config.maximum_batching_window_s
        while len(reader.buffer) < size and not reader.exhausted:
            filtered_before = reader.filtered
            read = reader.fill(size - len(reader.buffer))
            self._count(records_read=read, records_filtered=reader.filtered - filtered_before)
            if read:
                continue
            now = self.timing.clock()
            if not reader.buffer or now >= deadline:
                break
            self.timing.sleep(min(self.timing.poll_interval_s, deadline - now))
        return reader.take(size)

    def deliver(self, shard_id: str, records: Sequence[dict[str, Any]]) -> None:
        """Deliver one batch until every record has succeeded or been discarded."""
        self._count(batches=1)
        work = deque([Attempt(list(records))])
        while work:
            attempt = work.popleft()
            self._discard_expired(shard_id, attempt)
            if attempt.records:
                work.extendleft(reversed(self._attempt(shard_id, attempt)))

    def _attempt(self, shard_id: str, attempt: Attempt) -> list[Attempt]:
        """Invoke once; return what must be tried next (halves, a retry, or nothing)."""
        verdict, applied_at = self._invoke(attempt)
        done = len(attempt.records) if verdict.failed_from is None else verdict.failed_from
        self._succeeded(attempt.records[:done], applied_at)
        rest = attempt.records[done:]
        if not rest:
            return []
        if done and not verdict.whole_batch:
            # Observed on AWS: after a partial response the checkpoint moves and the rest is a new
            # batch (retries and approximateInvokeCount start again); it costs no retry.
            self._say(f"{shard_id}: {verdict.why} -> checkpoint, {len(rest)} record(s) again as a new batch")
            return [Attempt(rest)]
        if verdict.whole_batch and self.config.bisect_batch_on_function_error and len(rest) > 1:
            self._count(bisects=1)
            middle = len(rest) // 2
            self._say(f"{shard_id}: {verdict.why} -> bisect into {middle} + {len(rest) - middle}")
            return [
                Attempt(rest[:middle], attempt.retries, attempt.invocations),
                Attempt(rest[middle:], attempt.retries, attempt.invocations),
            ]
        limit = self.config.maximum_retry_attempts
        if limit != -1 and attempt.retries >= limit:
            self._discard(shard_id, rest, RETRY_ATTEMPTS_EXHAUSTED, attempt.invocations, verdict)
            return []
        self._count(retries=1)
        self._say(f"{shard_id}: {verdict.why} -> retry {attempt.retries + 1} of {len(rest)} record(s)")
        if self.timing.retry_delay_s:
            self.timing.sleep(self.timing.retry_delay_s)
        return [Attempt(rest, attempt.retries + 1, attempt.invocations)]

    def _invoke(self, attempt: Attempt) -> tuple[Verdict, float]:
        attempt.invocations += 1
        self._count(invocations=1)
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in attempt.records]
        try:
            response = self.handler({"Records": list(attempt.records)}, LambdaContext())
        except Exception as err:  # a function error, whatever it is
            self._count(function_errors=1)
            return Verdict(0, True, "Unhandled", f"function error {type(err).__name__}: {err}"), self._now()
        verdict = judge(response, sequence_numbers, self.config.report_batch_item_failures)
        if verdict.failed_from is not None:
            self._count(failed_responses=1)
        return verdict, self._now()

    def _succeeded(self, records: Sequence[dict[str, Any]], applied_at: float) -> None:
        if not records:
            return
        with self._lock:
            self.stats.records_delivered += len(records)
            self.stats.deliveries.extend(
                Delivery(r["dynamodb"]["SequenceNumber"], lag.creation_seconds(r), applied_at)
                for r in records
            )
        first, last = records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"]
        self._say(f"delivered {len(records)} record(s) {first}..{last}")

    def _discard_expired(self, shard_id: str, attempt: Attempt) -> None:
        limit = self.config.maximum_record_age_s
        if limit == -1:
            return
        now = self._now()
        ages = [now - (lag.creation_seconds(r) or now) for r in attempt.records]
        expired = max((i + 1 for i, age in enumerate(ages) if age > limit), default=0)
        if expired:
            old, attempt.records = attempt.records[:expired], attempt.records[expired:]
            self._discard(shard_id, old, RECORD_AGE_EXCEEDED, attempt.invocations, None)

    def _discard(
        self,
        shard_id: str,
        records: list[dict[str, Any]],
        condition: str,
        invokes: int,
        verdict: Verdict | None,
    ) -> None:
        self._count(records_discarded=len(records))
        payload = failure_record(
            records,
            condition=condition,
            invoke_count=invokes,
            function_error=None if verdict is None else verdict.function_error,
            shard_id=shard_id,
            stream_arn=self.source.arn,
            function_arn=self.config.function_arn,
            now=self._now(),
        )
        info = payload["DDBStreamBatchInfo"]
        self._say(
            f"{shard_id}: {condition}: {len(records)} record(s) "
            f"{info['startSequenceNumber']}..{info['endSequenceNumber']} discarded"
            + ("" if self.destination is None else " -> OnFailure destination")
        )
        if self.destination is not None:
            with self._lock:  # one OnFailure record at a time, whatever the concurrency
                self.destination.send(payload)
                self.stats.failures_sent += 1

    def _count(self, **deltas: int) -> None:
        """Add to the statistics; batches of one shard may run concurrently (ParallelizationFactor)."""
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _now(self) -> float:
        return self.timing.clock()

    def _say(self, line: str) -> None:
        self._progress(line)
