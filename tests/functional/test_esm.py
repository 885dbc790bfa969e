"""The event source mapping emulator, rule by rule, against the AWS Lambda guide's wording.

Handlers fail on purpose (raise for a sequence number, or report it); the
stream, clock and sleep are fakes, so nothing waits for real.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from streamcache.errors import ConfigError
from streamcache.local import esm
from streamcache.local.destination import MemoryDestination
from streamcache.local.stream import DataTrimmed, IteratorExpired

from .esm_fakes import ARN, FakeClock, FakeStream, raw_record, seqs

BASE = 1100000000017454423009


def stream_of(count: int, clock: FakeClock, closed: bool = True) -> FakeStream:
    records = [raw_record(BASE + i, clock.now - 1) for i in range(count)]
    return FakeStream(clock, {"shard-0": records}, closed={"shard-0"} if closed else set())


class Recorder:
    """A handler that records every event; fails for ``poison`` by raising or by reporting it."""

    def __init__(self, poison: set[int] = frozenset(), mode: str = "raise", response: Any = None) -> None:
        self.poison, self.mode, self.response = set(poison), mode, response
        self.calls: list[list[int]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        numbers = seqs(event)
        self.calls.append(numbers)
        bad = sorted(self.poison & set(numbers))
        if bad and self.mode == "raise":
            raise RuntimeError(f"poison {bad[0]}")
        if bad and self.mode == "report":
            return {"batchItemFailures": [{"itemIdentifier": str(s)} for s in bad]}
        return self.response


def run(count: int, handler: Recorder, **config: Any) -> tuple[esm.EventSourceMapping, MemoryDestination]:
    clock = FakeClock()
    destination = MemoryDestination()
    mapping = esm.EventSourceMapping(
        stream_of(count, clock),
        handler,
        esm.MappingConfig(**config),
        destination=destination,
        timing=clock.timing(),
    )
    mapping.run(until_caught_up=True)
    return mapping, destination


def delivered(mapping: esm.EventSourceMapping) -> list[int]:
    return [int(d.sequence_number) for d in mapping.stats.deliveries]


# --- batching ---------------------------------------------------------------


def test_batches_hold_at_most_batch_size_records_in_order() -> None:
    handler = Recorder()
    mapping, _ = run(250, handler, batch_size=100)
    assert [len(c) for c in handler.calls] == [100, 100, 50]
    assert delivered(mapping) == [BASE + i for i in range(250)]
    assert mapping.stats.batches == 3 and mapping.stats.records_read == 250


def test_event_records_are_shaped_like_lambdas() -> None:
    seen: list[dict[str, Any]] = []
    run(1, lambda event, context: seen.extend(event["Records"]))  # type: ignore[arg-type]
    record = seen[0]
    assert list(record) == [
        "eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN",
    ]  # fmt: skip
    assert record["eventSourceARN"] == ARN
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)


def test_batching_window_gathers_records_until_the_window_passes() -> None:
    clock = FakeClock()
    early = [raw_record(BASE, clock.now)]
    late = [raw_record(BASE + 1, clock.now + 1), raw_record(BASE + 2, clock.now + 2)]
    stream = FakeStream(clock, {"shard-0": early + late})
    handler = Recorder()
    config = esm.MappingConfig(maximum_batching_window_s=5)
    esm.EventSourceMapping(stream, handler, config, timing=clock.timing()).poll_once()
    assert handler.calls == [[BASE, BASE + 1, BASE + 2]]
    assert sum(clock.slept) == pytest.approx(5)


def test_without_a_batching_window_records_go_as_soon_as_they_are_there() -> None:
    clock = FakeClock()
    stream = FakeStream(
        clock, {"shard-0": [raw_record(BASE, clock.now), raw_record(BASE + 1, clock.now + 1)]}
    )
    handler = Recorder()
    esm.EventSourceMapping(stream, handler, esm.MappingConfig(), timing=clock.timing()).poll_once()
    assert handler.calls == [[BASE]]


def test_latest_skips_records_already_in_the_stream() -> None:
    clock = FakeClock()
    stream = FakeStream(
        clock, {"shard-0": [raw_record(BASE, clock.now - 1), raw_record(BASE + 1, clock.now + 1)]}
    )
    handler = Recorder()
    mapping = esm.EventSourceMapping(
        stream, handler, esm.MappingConfig(starting_position="LATEST"), timing=clock.timing()
    )
    mapping.poll_once()
    clock.now += 2
    mapping.poll_once()
    assert handler.calls == [[BASE + 1]]


# --- reading the stream: empty pages, expired iterators, trimmed data ----------


def test_an_empty_page_on_an_open_shard_does_not_mean_caught_up() -> None:
    """AWS (GetRecords): "If there are no stream records available in the portion of the shard that the
    iterator points to, GetRecords returns an empty list. Note that it might take multiple calls to get
    to a portion of the shard that contains stream records."
    """
    clock = FakeClock()
    stream = stream_of(3, clock, closed=False)
    stream.empty_pages = 2
    handler = Recorder()
    esm.EventSourceMapping(stream, handler, esm.MappingConfig(), timing=clock.timing()).run()
    assert handler.calls == [[BASE, BASE + 1, BASE + 2]]


def test_caught_up_takes_several_empty_pages_in_a_row_on_an_open_shard() -> None:
    clock = FakeClock()
    stream = stream_of(0, clock, closed=False)
    mapping = esm.EventSourceMapping(stream, Recorder(), esm.MappingConfig(), timing=clock.timing())
    mapping.run(until_caught_up=True)
    assert len(stream.reads) == esm.EMPTY_PAGES_CAUGHT_UP
    assert mapping.caught_up()


def _expire_after_first_batch(stream: FakeStream, error: Exception, trimmed_before: int = 0) -> Recorder:
    """A handler that, once the first batch is delivered, makes the next read fail with ``error``."""

    class Expiring(Recorder):
        def __call__(self, event: dict[str, Any], context: Any) -> Any:
            if not self.calls:
                stream.fail_reads.append(error)
                stream.trimmed_before = trimmed_before
            return super().__call__(event, context)

    return Expiring()


def test_an_expired_iterator_is_reacquired_after_the_last_record_read() -> None:
    """AWS (ExpiredIteratorException): "A shard iterator expires 15 minutes after it is retrieved using
    the GetShardIterator action." Lambda carries on from its checkpoint: no record lost, none repeated.
    """
    clock = FakeClock()
    stream = stream_of(4, clock)
    handler = _expire_after_first_batch(stream, IteratorExpired("ExpiredIteratorException: expired"))
    lines: list[str] = []
    config = esm.MappingConfig(batch_size=2)
    esm.EventSourceMapping(stream, handler, config, timing=clock.timing(), progress=lines.append).run()
    assert handler.calls == [[BASE, BASE + 1], [BASE + 2, BASE + 3]]
    assert stream.iterators == [("TRIM_HORIZON", None), ("AFTER_SEQUENCE_NUMBER", str(BASE + 1))]
    assert any(f"iterator expired -> re-acquired after {BASE + 1}" in line for line in lines), lines


def test_an_iterator_that_expired_before_any_read_restarts_at_the_starting_position() -> None:
    clock = FakeClock()
    stream = stream_of(2, clock)
    stream.fail_reads.append(IteratorExpired("ExpiredIteratorException: expired"))
    handler = Recorder()
    esm.EventSourceMapping(stream, handler, esm.MappingConfig(), timing=clock.timing()).run()
    assert handler.calls == [[BASE, BASE + 1]]
    assert stream.iterators == [("TRIM_HORIZON", None), ("TRIM_HORIZON", None)]


def test_trimmed_data_restarts_at_the_trim_horizon() -> None:
    """AWS (TrimmedDataAccessException): "You obtain a shard iterator, but before you use the iterator in a
    GetRecords request, a stream record in the shard exceeds the 24 hour period and is trimmed."
    What was trimmed is gone; reading goes on from the oldest record still there.
    """
    clock = FakeClock()
    stream = stream_of(5, clock)
    handler = _expire_after_first_batch(stream, DataTrimmed("TrimmedDataAccessException"), BASE + 3)
    lines: list[str] = []
    config = esm.MappingConfig(batch_size=2)
    esm.EventSourceMapping(stream, handler, config, timing=clock.timing(), progress=lines.append).run()
    assert handler.calls == [[BASE, BASE + 1], [BASE + 3, BASE + 4]]  # BASE + 2 was trimmed
    assert stream.iterators[-1] == ("TRIM_HORIZON", None)
    assert any("data trimmed -> re-reading from TRIM_HORIZON" in line for line in lines), lines


def test_an_expired_iterator_whose_checkpoint_was_trimmed_restarts_at_the_trim_horizon() -> None:
    """AWS: "You might receive a TrimmedDataAccessException if: You request a shard iterator with a
    sequence number older than the trim point (24 hours)."
    """
    clock = FakeClock()
    stream = stream_of(5, clock)
    handler = _expire_after_first_batch(stream, IteratorExpired("ExpiredIteratorException"), BASE + 3)
    config = esm.MappingConfig(batch_size=2)
    esm.EventSourceMapping(stream, handler, config, timing=clock.timing()).run()
    assert handler.calls == [[BASE, BASE + 1], [BASE + 3, BASE + 4]]
    assert stream.iterators == [
        ("TRIM_HORIZON", None),
        ("AFTER_SEQUENCE_NUMBER", str(BASE + 1)),  # refused: trimmed
        ("TRIM_HORIZON", None),
    ]


# --- FilterCriteria -----------------------------------------------------------


def test_filtered_out_records_are_checkpointed_without_an_invocation() -> None:
    """AWS: "Once your filter criteria processes an Kinesis or DynamoDB record, the streams iterator advances
    past this record. If the record doesn't satisfy your filter criteria, you don't have to manually delete
    the record from your event source."
    """
    clock = FakeClock()
    records = [raw_record(BASE + i, clock.now - 1, pk="keep" if i in (1, 3) else "drop") for i in range(5)]
    pattern = '{"dynamodb": {"Keys": {"pk": {"S": ["keep"]}}}}'
    handler = Recorder()
    config = esm.MappingConfig(filters=(pattern,), batch_size=2)
    source = FakeStream(clock, {"shard-0": records}, closed={"shard-0"})
    mapping = esm.EventSourceMapping(source, handler, config, timing=clock.timing())
    mapping.run()
    assert handler.calls == [[BASE + 1, BASE + 3]]
    assert mapping.stats.records_filtered == 3 and mapping.stats.records_read == 5
    assert delivered(mapping) == [BASE + 1, BASE + 3]


def test_reading_resumes_after_the_last_filtered_out_record() -> None:
    clock = FakeClock()
    records = [raw_record(BASE + i, clock.now - 1, pk="drop") for i in range(3)]
    stream = FakeStream(clock, {"shard-0": [*records, raw_record(BASE + 3, clock.now + 5, pk="keep")]})
    pattern = '{"dynamodb": {"Keys": {"pk": {"S": ["keep"]}}}}'
    handler = Recorder()
    mapping = esm.EventSourceMapping(
        stream, handler, esm.MappingConfig(filters=(pattern,)), timing=clock.timing()
    )
    mapping.poll_once()  # reads the three filtered-out records: nothing to invoke
    stream.fail_reads.append(IteratorExpired("ExpiredIteratorException"))
    clock.now += 10
    mapping.run()
    assert handler.calls == [[BASE + 3]]
    assert ("AFTER_SEQUENCE_NUMBER", str(BASE + 2)) in stream.iterators  # the checkpoint moved past them


def test_a_bad_filter_pattern_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="filter pattern"):
        esm.MappingConfig(filters=('{"eventName": "INSERT"}',))


# --- ParallelizationFactor ----------------------------------------------------


def keys_in_two_lanes() -> tuple[str, str]:
    """Two item keys whose records go to different lanes with a factor of 2."""
    lanes: dict[int, str] = {}
    for i in range(100):
        pk = f"item{i}"
        lanes.setdefault(esm.lane_of(raw_record(BASE, 0.0, pk=pk, sk=1), 2), pk)
    return lanes[0], lanes[1]


def test_concurrent_batches_keep_each_items_records_in_order() -> None:
    """AWS (with-ddb): "When you increase the number of concurrent batches per shard, Lambda still ensures
    in-order processing at the item (partition and sort key) level."
    """
    clock = FakeClock()
    first, second = keys_in_two_lanes()
    records = [raw_record(BASE + i, clock.now - 1, pk=(first, second)[i % 2], sk=1) for i in range(40)]
    stream = FakeStream(clock, {"shard-0": records}, closed={"shard-0"})
    both_lanes_in_flight = threading.Barrier(2, timeout=10)
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> None:
        if not seen:  # the first batch of each lane waits for the other: they must be in flight together
            both_lanes_in_flight.wait()
        with lock:
            seen.extend(
                (r["dynamodb"]["Keys"]["pk"]["S"], int(r["dynamodb"]["SequenceNumber"]))
                for r in event["Records"]
            )

    config = esm.MappingConfig(batch_size=5, parallelization_factor=2, maximum_retry_attempts=0)
    mapping = esm.EventSourceMapping(stream, handler, config, timing=clock.timing())
    mapping.run()
    assert mapping.stats.function_errors == 0  # the barrier was passed: two batches of one shard at once
    for pk in (first, second):
        order = [seq for key, seq in seen if key == pk]
        assert order == sorted(order) and len(order) == 20
    assert sorted(delivered(mapping)) == [BASE + i for i in range(40)]


def test_an_items_records_always_share_a_lane() -> None:
    record = raw_record(BASE, 0.0, pk="a", sk=1)
    later = raw_record(BASE + 99, 5.0, pk="a", sk=1)
    assert all(esm.lane_of(record, n) == esm.lane_of(later, n) for n in range(1, 11))


def test_failures_in_one_lane_are_retried_there_while_the_other_lane_goes_on() -> None:
    clock = FakeClock()
    first, second = keys_in_two_lanes()
    records = [raw_record(BASE + i, clock.now - 1, pk=(first, second)[i % 2], sk=1) for i in range(6)]
    stream = FakeStream(clock, {"shard-0": records}, closed={"shard-0"})
    handler = Recorder(poison={BASE + 2}, mode="report")
    destination = MemoryDestination()
    config = esm.MappingConfig(batch_size=10, parallelization_factor=2, report_batch_item_failures=True,
                               maximum_retry_attempts=1)  # fmt: skip
    mapping = esm.EventSourceMapping(stream, handler, config, destination=destination, timing=clock.timing())
    mapping.run()
    assert sorted(delivered(mapping)) == [BASE, BASE + 1, BASE + 3, BASE + 5]  # the poison's lane stops at it
    info = destination.payloads[0]["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (str(BASE + 2), str(BASE + 4))


# --- shards -----------------------------------------------------------------


def test_child_shard_is_read_only_after_its_parent_is_finished() -> None:
    clock = FakeClock()
    child = [raw_record(BASE + 10, clock.now - 1)]
    parent = [raw_record(BASE, clock.now - 1), raw_record(BASE + 1, clock.now - 1)]
    stream = FakeStream(
        clock, {"child": child, "parent": parent}, parents={"child": "parent"}, closed={"parent"}
    )
    handler = Recorder()
    esm.EventSourceMapping(stream, handler, esm.MappingConfig(), timing=clock.timing()).run()
    assert handler.calls == [[BASE, BASE + 1], [BASE + 10]]


def test_child_of_an_open_parent_waits() -> None:
    clock = FakeClock()
    stream = FakeStream(
        clock, {"parent": [raw_record(BASE, clock.now - 1)], "child": [raw_record(BASE + 9, clock.now - 1)]},
        parents={"child": "parent"},
    )  # fmt: skip
    handler = Recorder()
    esm.EventSourceMapping(stream, handler, esm.MappingConfig(), timing=clock.timing()).run()
    assert handler.calls == [[BASE]]
    assert "child" not in stream.reads


def test_child_of_a_trimmed_parent_is_read() -> None:
    clock = FakeClock()
    stream = FakeStream(clock, {"child": [raw_record(BASE, clock.now - 1)]}, parents={"child": "gone"})
    handler = Recorder()
    esm.EventSourceMapping(stream, handler, esm.MappingConfig(), timing=clock.timing()).run()
    assert handler.calls == [[BASE]]


# --- ReportBatchItemFailures -------------------------------------------------


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_empty_or_null_responses_are_complete_success(response: Any) -> None:
    """AWS: "Lambda treats a batch as a complete success if you return any of the following: An empty
    batchItemFailure list; A null batchItemFailure list; An empty EventResponse; A null EventResponse"."""
    assert esm.judge(response, ["1", "2"], report_enabled=True) == esm.SUCCESS


def test_an_empty_list_response_is_complete_success() -> None:
    """Observed, the docs being silent on a list: AWS treated ``[]`` as success (one invocation,
    record done), in a recorded run and in LocalStack's AWS-validated ``empty_list_success`` case."""
    handler = Recorder(response=[])
    mapping, destination = run(3, handler, report_batch_item_failures=True, maximum_retry_attempts=2)
    assert handler.calls == [[BASE, BASE + 1, BASE + 2]]
    assert delivered(mapping) == [BASE, BASE + 1, BASE + 2] and destination.payloads == []


@pytest.mark.parametrize("response", [["2"], [{"itemIdentifier": "2"}], "2", 2, "", True])
def test_other_response_shapes_are_complete_failure(response: Any) -> None:
    """Assumed (the docs are silent on a non-empty list, a string, a number): complete failure,
    the reading that never drops a record the function may not have handled."""
    verdict = esm.judge(response, ["1", "2"], report_enabled=True)
    assert verdict.failed_from == 0 and verdict.whole_batch


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"ItemIdentifier": "2"}],  # wrong key name
        [{"foo": None}],  # wrong key name, null value
        [{"itemIdentifier": 2}],  # a number: observed as failure (LocalStack's AWS-validated case)
        [{"itemIdentifier": "99"}],  # not in the batch (assumed)
        ["2"],
        "2",
    ],
)
def test_bad_item_identifiers_fail_the_whole_batch(failures: Any) -> None:
    """AWS: "Lambda treats a batch as a complete failure if you return any of the following: An empty string
    itemIdentifier; A null itemIdentifier; An itemIdentifier with a bad key name"; the rest: see each case."""
    verdict = esm.judge({"batchItemFailures": failures}, ["1", "2"], report_enabled=True)
    assert verdict.failed_from == 0 and verdict.whole_batch


def test_a_response_that_is_not_an_object_fails_the_whole_batch() -> None:
    assert esm.judge("ok", ["1"], report_enabled=True).whole_batch


def test_responses_are_ignored_without_report_batch_item_failures() -> None:
    """AWS: "Even when your function code returns partial batch failure responses, these responses will not be
    processed by Lambda unless the ReportBatchItemFailures feature is explicitly turned on." (guide)"""
    assert (
        esm.judge({"batchItemFailures": [{"itemIdentifier": ""}]}, ["1"], report_enabled=False) == esm.SUCCESS
    )


def test_checkpoint_is_the_lowest_reported_sequence_number() -> None:
    """AWS: "If the batchItemFailures array contains multiple items, Lambda uses the record with the lowest
    sequence number as the checkpoint." (the guide)"""
    verdict = esm.judge(
        {"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "2"}]}, ["1", "2", "3"], True
    )
    assert verdict.failed_from == 1 and not verdict.whole_batch


def test_partial_failure_retries_from_the_reported_record_only() -> None:
    handler = Recorder(poison={BASE + 2}, mode="report")
    mapping, destination = run(5, handler, report_batch_item_failures=True, maximum_retry_attempts=1)
    assert handler.calls[0] == [BASE + i for i in range(5)]
    assert handler.calls[1] == [BASE + 2, BASE + 3, BASE + 4]  # retry: only the remaining records
    assert delivered(mapping) == [BASE, BASE + 1]
    info = destination.payloads[0]["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        str(BASE + 2), str(BASE + 4), 3,
    )  # fmt: skip
    assert destination.payloads[0]["responseContext"]["functionError"] is None


def test_after_a_partial_failure_the_rest_is_a_new_batch_with_its_own_retries() -> None:
    """AWS: "Lambda uses the record with the lowest sequence number as the checkpoint. Lambda then retries
    all records starting from that checkpoint." Observed in a recorded run with MaximumRetryAttempts 3:
    the reported record was delivered 5 times (in the original batch, then 4 more) and its OnFailure
    record said approximateInvokeCount 4: the batch that starts at the checkpoint is a new batch, its
    first invocation is not a retry.
    """
    handler = Recorder(poison={BASE + 1}, mode="report")
    mapping, destination = run(3, handler, report_batch_item_failures=True, maximum_retry_attempts=3)
    assert sum(BASE + 1 in call for call in handler.calls) == 5
    assert handler.calls[1:] == [[BASE + 1, BASE + 2]] * 4
    payload = destination.payloads[0]
    assert payload["requestContext"]["approximateInvokeCount"] == 4
    assert payload["DDBStreamBatchInfo"]["startSequenceNumber"] == str(BASE + 1)
    assert mapping.stats.retries == 3 and delivered(mapping) == [BASE]


def test_partial_failure_with_bisect_splits_at_the_reported_record() -> None:
    handler = Recorder(poison={BASE + 3}, mode="report")
    mapping, _ = run(
        6,
        handler,
        report_batch_item_failures=True,
        bisect_batch_on_function_error=True,
        maximum_retry_attempts=0,
    )
    # the rest is a new batch; it reports its first record and has no retry: discarded
    assert handler.calls == [[BASE + i for i in range(6)], [BASE + 3, BASE + 4, BASE + 5]]
    assert mapping.stats.bisects == 0 and mapping.stats.records_discarded == 3


# --- function errors, bisect, retries ------------------------------------------


def test_function_error_without_bisect_retries_the_whole_batch_then_discards_it() -> None:
    handler = Recorder(poison={BASE + 1})
    mapping, destination = run(4, handler, maximum_retry_attempts=2)
    assert handler.calls == [[BASE, BASE + 1, BASE + 2, BASE + 3]] * 3  # first try + 2 retries
    assert delivered(mapping) == []
    payload = destination.payloads[0]
    assert payload["requestContext"]["condition"] == esm.RETRY_ATTEMPTS_EXHAUSTED
    assert payload["requestContext"]["approximateInvokeCount"] == 3
    assert payload["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert payload["DDBStreamBatchInfo"]["batchSize"] == 4


def test_bisect_isolates_the_poison_record_and_delivers_the_rest() -> None:
    """AWS: "If the invocation fails and BisectBatchOnFunctionError is turned on, the batch is bisected
    regardless of your ReportBatchItemFailures setting." (the guide)"""
    handler = Recorder(poison={BASE + 5})
    mapping, destination = run(8, handler, bisect_batch_on_function_error=True, maximum_retry_attempts=1)
    assert handler.calls[:4] == [
        [BASE + i for i in range(8)],
        [BASE + i for i in range(4)],  # first half succeeds
        [BASE + i for i in range(4, 8)],
        [BASE + 4, BASE + 5],
    ]
    assert delivered(mapping) == [BASE + i for i in range(8) if i != 5]
    info = destination.payloads[0]["DDBStreamBatchInfo"]
    assert (
        info["startSequenceNumber"] == info["endSequenceNumber"] == str(BASE + 5) and info["batchSize"] == 1
    )


def test_bisecting_does_not_count_towards_the_retry_quota() -> None:
    """AWS: "Splitting a batch does not count towards the retry quota." (the guide)"""
    handler = Recorder(poison={BASE + 5})
    mapping, destination = run(8, handler, bisect_batch_on_function_error=True, maximum_retry_attempts=0)
    assert mapping.stats.bisects == 3 and mapping.stats.retries == 0
    assert handler.calls.count([BASE + 5]) == 1  # isolated, invoked once, no retry left
    assert destination.payloads[0]["requestContext"]["approximateInvokeCount"] == 4  # 8, 4, 2, 1


class FailsFirstThenRaises:
    """Reports the first record once (a retry, nothing checkpointed), then raises on ``poison``."""

    def __init__(self, poison: int) -> None:
        self.poison = poison
        self.calls: list[list[int]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        numbers = seqs(event)
        self.calls.append(numbers)
        if len(self.calls) == 1:
            return {"batchItemFailures": [{"itemIdentifier": str(numbers[0])}]}
        if self.poison in numbers:
            raise RuntimeError("poison")
        return None


def test_bisected_halves_inherit_the_retries_already_used() -> None:
    """AWS: "Splitting a batch does not count towards the retry quota" (neither costs nor refunds a retry).

    GIVEN a batch of 4 that has already used 1 of its 2 retries (its first record was reported,
    so nothing was checkpointed), WHEN it is bisected down to the poison record, THEN the poison
    alone gets only the 1 retry left: invoked twice on its own, not three times.
    """
    handler = FailsFirstThenRaises(poison=BASE + 3)
    mapping, destination = run(
        4,
        handler,
        bisect_batch_on_function_error=True,
        report_batch_item_failures=True,
        maximum_retry_attempts=2,
    )
    assert handler.calls[:2] == [[BASE, BASE + 1, BASE + 2, BASE + 3]] * 2  # first try, retry 1
    assert handler.calls.count([BASE + 3]) == 2  # its first try alone + the 1 retry left
    assert mapping.stats.retries == 2 and mapping.stats.bisects == 2
    assert delivered(mapping) == [BASE, BASE + 1, BASE + 2]
    assert destination.payloads[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == str(BASE + 3)


def test_the_first_bisected_half_inherits_the_retries_already_used_too() -> None:
    # The same with the poison record first: it ends up in the first half of each bisection.
    handler = FailsFirstThenRaises(poison=BASE)
    mapping, destination = run(
        4,
        handler,
        bisect_batch_on_function_error=True,
        report_batch_item_failures=True,
        maximum_retry_attempts=2,
    )
    assert handler.calls.count([BASE]) == 2  # its first try alone + the 1 retry left
    assert delivered(mapping) == [BASE + 1, BASE + 2, BASE + 3]
    assert destination.payloads[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == str(BASE)


def test_infinite_retries_stop_at_the_maximum_record_age() -> None:
    """AWS: "-1 means infinite: failed records are retried until the record expires." (the guide)"""
    clock = FakeClock()
    destination = MemoryDestination()
    handler = Recorder(poison={BASE})
    config = esm.MappingConfig(maximum_retry_attempts=-1, maximum_record_age_s=60)
    mapping = esm.EventSourceMapping(
        stream_of(2, clock), handler, config, destination=destination, timing=clock.timing(retry_delay_s=10)
    )
    mapping.run()
    assert len(handler.calls) == 6  # invoked at ages 1, 11, ..., 51 s; at 61 s the records are discarded
    assert destination.payloads[0]["requestContext"]["condition"] == esm.RECORD_AGE_EXCEEDED
    assert destination.payloads[0]["DDBStreamBatchInfo"]["batchSize"] == 2


def test_old_records_are_discarded_before_any_invocation() -> None:
    """AWS: MaximumRecordAgeInSeconds "Discard records older than the specified age." (the guide)"""
    clock = FakeClock()
    records = [raw_record(BASE, clock.now - 120), raw_record(BASE + 1, clock.now - 1)]
    destination = MemoryDestination()
    handler = Recorder()
    config = esm.MappingConfig(maximum_record_age_s=60)
    stream = FakeStream(clock, {"shard-0": records}, closed={"shard-0"})
    esm.EventSourceMapping(stream, handler, config, destination=destination, timing=clock.timing()).run()
    assert handler.calls == [[BASE + 1]]
    assert destination.payloads[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == str(BASE)


def test_onfailure_payload_has_lambdas_shape() -> None:
    clock = FakeClock()
    records = [esm_record(BASE, 1_700_000_000.0), esm_record(BASE + 1, 1_700_000_002.0)]
    payload = esm.failure_record(
        records, condition=esm.RETRY_ATTEMPTS_EXHAUSTED, invoke_count=3, function_error="Unhandled",
        shard_id="shard-0", stream_arn=ARN, function_arn=esm.DEFAULT_FUNCTION_ARN, now=clock.now,
    )  # fmt: skip
    assert set(payload) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
    assert set(payload["requestContext"]) == {
        "requestId",
        "functionArn",
        "condition",
        "approximateInvokeCount",
    }
    assert payload["version"] == "1.0" and payload["timestamp"].endswith("Z") and "." in payload["timestamp"]
    assert payload["DDBStreamBatchInfo"] == {
        "shardId": "shard-0",
        "startSequenceNumber": str(BASE),
        "endSequenceNumber": str(BASE + 1),
        "approximateArrivalOfFirstRecord": "2023-11-14T22:13:20Z",
        "approximateArrivalOfLastRecord": "2023-11-14T22:13:22Z",
        "batchSize": 2,
        "streamArn": ARN,
    }


def esm_record(seq: int, created: float) -> dict[str, Any]:
    record = raw_record(seq, created)
    record["eventSourceARN"] = ARN
    return record


# --- statistics and configuration ---------------------------------------------


def test_lag_is_apply_time_minus_creation_time() -> None:
    clock = FakeClock()
    stream = FakeStream(clock, {"shard-0": [raw_record(BASE, clock.now - 2.5)]}, closed={"shard-0"})
    mapping = esm.EventSourceMapping(stream, Recorder(), esm.MappingConfig(), timing=clock.timing())
    mapping.run()
    assert mapping.stats.lags_ms() == [pytest.approx(2500.0)]


@pytest.mark.parametrize(
    ("setting", "value", "name"),
    [
        ("batch_size", 0, "BatchSize"),
        ("batch_size", 10_001, "BatchSize"),
        ("maximum_retry_attempts", -2, "MaximumRetryAttempts"),
        ("maximum_retry_attempts", 10_001, "MaximumRetryAttempts"),
        ("maximum_record_age_s", 59, "MaximumRecordAgeInSeconds"),
        ("maximum_record_age_s", 604_801, "MaximumRecordAgeInSeconds"),
        ("maximum_batching_window_s", 301, "MaximumBatchingWindowInSeconds"),
        ("starting_position", "AT_TIMESTAMP", "StartingPosition"),
        ("parallelization_factor", 0, "ParallelizationFactor"),
        ("parallelization_factor", 11, "ParallelizationFactor"),
    ],
)
def test_out_of_range_settings_are_refused_by_name(setting: str, value: Any, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        esm.MappingConfig(**{setting: value})


def test_consume_refuses_a_bad_filter_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from streamcache.cli import main

    assert main(["consume", "--table", "orders", "--filter", '{"eventName": "INSERT"}']) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'eventName' must be a non-empty list of rules" in err
