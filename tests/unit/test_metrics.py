"""The invalidator's metrics: one value per metric per batch, published for many batches as one EMF line."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from hypothesis import given
from hypothesis import strategies as st

from streamcache import lag, metrics

NOW = 1_700_000_000.0


def record(created: float | None) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {"SequenceNumber": "1"}
    if created is not None:
        dynamodb["ApproximateCreationDateTime"] = created
    return {"dynamodb": dynamodb}


@given(st.lists(st.one_of(st.none(), st.integers(NOW - 3600, NOW + 5).map(float)), max_size=60))
def test_lag_summary_equals_nearest_rank_over_every_record(created: list[float | None]) -> None:
    records = [record(c) for c in created]
    per_record = lag.lags_ms(records, NOW)  # the plain definition: one lag per record
    summary = metrics.lag(metrics.creation_times(records), NOW)
    if not per_record:
        assert summary is None
    else:
        assert summary == metrics.Lag(lag.percentile(per_record, 0.5), max(per_record))


def test_creation_times_count_records_per_second_and_accept_milliseconds() -> None:
    records = [record(NOW), record(NOW * 1000), record(NOW - 1), record(None), {"dynamodb": "?"}]
    assert metrics.creation_times(records) == Counter({NOW: 2, NOW - 1: 1})


def one_invocation(counts: Counter[str], batch_lag: metrics.Lag | None) -> dict[str, Any]:
    pending = metrics.Pending(interval_s=0.0)
    pending.add(counts, batch_lag)
    return pending.take()


def test_every_count_is_published_even_when_zero_and_lag_only_when_known() -> None:
    figures = one_invocation(Counter(records=3, applied=2, failed=1), None)
    assert {name: f["Value"] for name, f in figures.items()} == {
        "RecordsApplied": [2.0],
        "RecordsSkippedOlder": [0.0],
        "RecordsInvalidated": [0.0],
        "RecordsFailed": [1.0],
        "RecordsDeduplicated": [0.0],
        "KeySchemaMismatch": [0.0],
        "PartitionMarkersMoved": [0.0],
        "BatchSize": [3.0],
    }
    with_lag = one_invocation(Counter(records=1), metrics.Lag(12.5, 40.0))
    assert with_lag["StreamLagMs"] == {"Unit": "Milliseconds", "StorageResolution": 60, "Value": [12.5]}
    assert with_lag["StreamLagMaxMs"]["Value"] == [40.0]


def test_published_set_flushes_as_one_emf_line(capsys: pytest.CaptureFixture[str]) -> None:
    powertools = Metrics(namespace="streamcache-test", service="unit")
    powertools.clear_metrics()
    metrics.publish(powertools, one_invocation(Counter(records=5, applied=4), metrics.Lag(7.0, 9.0)))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1
    emf = json.loads(lines[0])
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "streamcache-test"
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units["RecordsApplied"] == "Count" and units["StreamLagMs"] == "Milliseconds"
    assert emf["service"] == "unit" and emf["RecordsApplied"] == [4.0] and emf["BatchSize"] == [5.0]
    assert emf["StreamLagMaxMs"] == [9.0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pending_publishes_at_first_then_per_interval_or_100_invocations_or_when_urgent() -> None:
    clock = Clock()
    pending = metrics.Pending(interval_s=60.0, clock=clock)
    assert not pending.due()  # nothing to publish
    pending.add(Counter(records=2, applied=2), None)
    assert pending.due()  # an environment's first invocation
    assert pending.take()["BatchSize"]["Value"] == [2.0]
    pending.add(Counter(records=1, applied=1), metrics.Lag(5.0, 6.0))
    assert not pending.due() and pending.due(urgent=True)
    clock.now += 60.0
    assert pending.due()
    taken = pending.take()
    assert taken["RecordsApplied"]["Value"] == [1.0] and taken["StreamLagMs"]["Value"] == [5.0]
    for _ in range(99):
        pending.add(Counter(records=1), None)
    assert not pending.due()
    pending.add(Counter(records=1), None)
    assert pending.due() and len(pending.take()["BatchSize"]["Value"]) == 100
    assert not pending.due(urgent=True) and pending.take() == {}  # nothing left after a flush


def test_values_keep_one_entry_per_invocation_zeros_included() -> None:
    pending = metrics.Pending(interval_s=60.0)
    pending.add(Counter(records=3, applied=2, failed=1), metrics.Lag(1.0, 2.0))
    pending.add(Counter(records=1, skipped_older=1), None)
    taken = pending.take()
    assert taken["RecordsFailed"]["Value"] == [1.0, 0.0] and taken["RecordsSkippedOlder"]["Value"] == [
        0.0,
        1.0,
    ]
    assert taken["StreamLagMaxMs"] == {"Unit": "Milliseconds", "StorageResolution": 60, "Value": [2.0]}


@pytest.mark.parametrize(
    ("raw", "expected", "warned"),
    [
        ("", 60.0, False),
        ("15", 15.0, False),
        (" 0 ", 0.0, False),
        ("abc", 60.0, True),
        ("-1", 60.0, True),
        ("nan", 60.0, True),
        ("inf", 60.0, True),
    ],
)
def test_flush_interval_from_the_environment(raw: str, expected: float, warned: bool) -> None:
    warnings: list[str] = []
    assert metrics.flush_interval_s({"METRICS_FLUSH_SECONDS": raw}, warnings.append) == expected
    assert bool(warnings) == warned
    if warned:
        assert "METRICS_FLUSH_SECONDS" in warnings[0] and repr(raw) in warnings[0]
