"""The benchmark's pure helpers: statistics and table formatting (never timings)."""

from __future__ import annotations

import math

import pytest

from bench import report, stats, table


def test_median_of_even_count_is_mean_of_middle_pair() -> None:
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 0.5) == 50.0
    assert stats.percentile(values, 0.99) == 99.0
    assert stats.percentile(values, 1.0) == 100.0
    assert stats.percentile([7.0], 0.99) == 7.0


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_percentile_rejects_fraction_outside_unit_interval(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        stats.percentile([1.0], fraction)


def test_empty_inputs_are_errors_not_zero() -> None:
    with pytest.raises(ValueError):
        stats.median([])
    with pytest.raises(ValueError):
        stats.percentile([], 0.5)


def test_rate_and_ratio() -> None:
    assert stats.rate(1000, 0.5) == 2000.0
    assert math.isinf(stats.rate(10, 0.0))
    assert stats.ratio(30.0, 10.0) == 3.0
    assert stats.ratio(None, 10.0) is None
    assert stats.ratio(1.0, 0.0) is None


def test_repetitions_aim_at_a_record_budget_within_bounds() -> None:
    assert stats.repetitions(100, 40000, 3, 300) == 300  # capped
    assert stats.repetitions(1000, 40000, 3, 300) == 40
    assert stats.repetitions(10000, 40000, 3, 300) == 4
    assert stats.repetitions(100000, 40000, 3, 300) == 3  # floor
    with pytest.raises(ValueError, match="batch size"):
        stats.repetitions(0, 10, 1, 2)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (1.234, "1.23"),
        (12.34, "12.3"),
        (999.0, "999"),
        (12345.0, "12.3k"),
        (2.5e6, "2.50M"),
        (None, "-"),
    ],
)
def test_number_keeps_three_significant_figures(value: float | None, text: str) -> None:
    assert table.number(value) == text


def test_render_aligns_columns_under_a_rule() -> None:
    text = table.render(["name", "n"], [["a", 1], ["longer", 1000.0]], "T")
    assert text.splitlines() == ["T", "name        n", "------  -----", "a           1", "longer  1.00k"]


def test_targets_report_met_unmet_and_unmeasured() -> None:
    results = {
        "throughput": {
            "ratios_at_10000": {
                "streamcache / per-record loop": 12.0,
                "streamcache / bare pipelined SET": 0.4,
            }
        },
        "cold_start": {"import_ms": {"invalidator.handler": {"median_ms": 140.0}}},
        "reader": {"available": False},
    }
    met = {c["target"].split(" >=")[0].split(" <")[0]: c["met"] for c in report.targets(results)}
    assert met == {
        "throughput vs per-record loop @10k": True,
        "throughput vs bare pipelined SET @10k": False,
        "invalidator import ms": True,
        "reader hit p50 vs GET+decode": None,
        "reader miss p50 vs boto3 get_item": None,
        "distinct keys vs bare pipelined SET @10k": None,
        **{f"handler vs per-record loop @{n}": None for n in (1, 10, 100)},
        "process() @1 minus PING round trip, us": None,
        **{f"cluster vs single node @{n}": None for n in (100, 1000, 10000)},
    }
