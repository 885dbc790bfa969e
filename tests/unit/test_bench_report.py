"""The benchmark's report: small-batch and cluster targets, latency lines, the generated docs page."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import bench.__main__ as bench_main
from bench import docs, report, throughput


def results(handler_over_loop: float, cluster_ratio: float, process_p50: float) -> dict[str, Any]:
    sizes = {str(n): {"handler / per-record loop": handler_over_loop} for n in (1, 10, 100)}
    latency = {"1": {"streamcache": {"p50": process_p50, "p99": process_p50 * 3}}}
    return {
        "machine": {"cpu": "X", "cores": 2, "load_average_at_start": [3.5, 2.0, 1.0]},
        "throughput": {
            "sizes": [1],
            "records_per_s": {"streamcache": {"1": 100.0}},
            "redis_benchmark": {"available": False, "note": "not run"},
            "ratios_at_10000": {
                "streamcache / per-record loop": 20.0,
                "streamcache / bare pipelined SET": 0.6,
            },
            "ratios_by_size": sizes,
            "latency_us": latency,
            "ping_round_trip_us": {"p50": 40.0, "p99": 90.0},
            "distinct_keys_10000": {"streamcache": 30.0, "bare pipelined SET": 60.0},
        },
        "cluster": {
            "sizes": [int(n) for n in report.CLUSTER_SIZES],
            "records_per_s": {"3-master cluster": {n: 1000.0 * cluster_ratio for n in report.CLUSTER_SIZES}},
            "cluster_over_single": {n: cluster_ratio for n in report.CLUSTER_SIZES},
        },
    }


def verdicts(found: dict[str, Any]) -> dict[str, bool | None]:
    return {check["target"]: check["met"] for check in report.targets(found)}


def test_small_batch_cluster_and_round_trip_targets_are_checked() -> None:
    met = verdicts(results(handler_over_loop=1.2, cluster_ratio=0.9, process_p50=65.0))
    assert met["handler vs per-record loop @1 >= 1"] is True
    assert met["cluster vs single node @10000 >= 0.8"] is True
    assert met["process() @1 minus PING round trip, us <= 30"] is True  # 65 - 40
    assert met["distinct keys vs bare pipelined SET @10k >= 0.5"] is True
    missed = verdicts(results(handler_over_loop=0.7, cluster_ratio=0.5, process_p50=90.0))
    assert missed["handler vs per-record loop @10 >= 1"] is False
    assert missed["cluster vs single node @100 >= 0.8"] is False
    assert missed["process() @1 minus PING round trip, us <= 30"] is False


def test_the_round_trip_is_the_ping_timed_in_the_same_rotation_when_there_is_one() -> None:
    found = results(handler_over_loop=1.2, cluster_ratio=0.9, process_p50=65.0)
    found["throughput"]["latency_us"]["1"][throughput.PING] = {"p50": 30.0, "p99": 80.0}
    assert verdicts(found)["process() @1 minus PING round trip, us <= 30"] is False  # 65 - 30, not 65 - 40
    value = {c["target"]: c["value"] for c in report.targets(found)}[
        "process() @1 minus PING round trip, us <= 30"
    ]
    assert value == 35.0


def test_latency_table_shows_p50_and_p99_per_size() -> None:
    text = report.latency(
        {"1": {"handler": {"p50": 120.4, "p99": 480.6}}, "10": {"handler": {"p50": 200, "p99": 900}}}
    )
    assert "1 records" in text and "10 records" in text
    assert "120 / 481" in text and "200 / 900" in text


def test_latency_percentiles_are_in_microseconds() -> None:
    assert throughput.latency_us([0.001] * 98 + [0.002, 0.010]) == {"p50": 1000.0, "p99": 2000.0}


def test_docs_page_is_generated_from_the_results_and_says_so() -> None:
    found = results(handler_over_loop=1.2, cluster_ratio=0.9, process_p50=65.0)
    found["targets"] = report.targets(found)
    page = docs.page(found)
    assert page.startswith("# Benchmarks") and "do not edit by hand" in page
    assert "3.50 / 2.00 / 1.00 (1/5/15 min)" in page  # the load the figures were taken under
    assert "## Targets" in page and "handler vs per-record loop @1" in page


def test_quick_runs_write_outside_the_tracked_results() -> None:
    assert bench_main.QUICK_OUT != bench_main.HERE
    ignored = (Path(bench_main.HERE).parent / ".gitignore").read_text().splitlines()
    assert f"{bench_main.QUICK_OUT.relative_to(bench_main.HERE.parent)}/" in ignored


def test_the_log_line_figures_are_reported_when_measured() -> None:
    found = results(handler_over_loop=1.2, cluster_ratio=0.9, process_p50=65.0)["throughput"]
    assert "INFO line" not in report.throughput(found)
    found["log_line_us"] = {"logger.info": {"p50": 40.2, "p99": 90.0}, "InfoLine": {"p50": 12.0, "p99": 30.4}}
    line = report.throughput(found).splitlines()[-1]
    assert line == "the handler's per-batch INFO line, us p50 / p99: logger.info 40 / 90, InfoLine 12 / 30"


def test_the_log_line_is_timed_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    import invalidator.handler as module

    calls: list[str] = []
    monkeypatch.setattr(module.logger, "info", lambda *a, **k: calls.append("logger.info"))
    monkeypatch.setattr(module, "batch_applied", lambda *a: calls.append("InfoLine"))

    class Pending:
        def prepare(self) -> None:
            calls.append("prepare")

        def __call__(self, fields: object) -> None:
            calls.append("PendingLine")

    monkeypatch.setattr(
        throughput, "InfoLine", lambda logger: SimpleNamespace(pending=lambda message: Pending())
    )
    figures = throughput.log_line_us(3)
    assert calls == ["logger.info", "InfoLine", "prepare", "PendingLine"] * 3
    assert list(figures) == ["logger.info", "InfoLine", "PendingLine, prepared"]
    assert all(f["p50"] > 0 for f in figures.values())
