"""The consistency suite's figures: written per process, printed once at the end of the run.

Each test process (each xdist worker, or the only process) writes its
``Stats`` as JSON under pytest's base temp directory; the terminal summary
hook of the process that prints (the xdist controller, or the only process)
gathers them, so the figures appear with or without ``-s`` and with ``-n``.
Nothing is written into the repository.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

FILE_GLOB = "consistency-stats-*.json"


def write(stats: Any, basetemp: Path) -> Path:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = basetemp / f"consistency-stats-{worker}.json"
    path.write_text(json.dumps(dataclasses.asdict(stats)), encoding="utf-8")
    return path


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def merge(paths: list[Path]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for path in paths:
        for name, value in json.loads(path.read_text(encoding="utf-8")).items():
            if isinstance(value, dict):
                bucket = total.setdefault(name, {})
                for k, v in value.items():
                    bucket[k] = bucket.get(k, 0) + v
            else:
                total[name] = total.get(name, [] if isinstance(value, list) else 0) + value
    return total


def lines(total: dict[str, Any]) -> list[str]:
    ms, steps = total.get("staleness_ms", []), total.get("staleness_steps", [])
    counts = ", ".join(
        f"{name}={total.get(name, 0)}"
        for name in (
            "schedules",
            "writes",
            "invocations",
            "records_delivered",
            "rewinds",
            "partials",
            "errors",
            "redrives",
            "reads",
            "hits",
            "get_items",
            "raced_reads",
            "fills_rejected",
            "checks",
        )
    )
    faults = ", ".join(f"{k}={v}" for k, v in sorted(total.get("faults", {}).items())) or "none"
    return [
        counts,
        f"faults injected: {faults}",
        f"staleness over {len(ms)} writes (write -> cache stops serving the previous state): "
        f"p50={_percentile(ms, 0.5):.2f} ms p99={_percentile(ms, 0.99):.2f} ms "
        f"max={max(ms, default=0):.2f} ms; "
        f"in schedule steps p50={_percentile(steps, 0.5):.0f} p99={_percentile(steps, 0.99):.0f} "
        f"max={max(steps, default=0)}",
    ]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    base = factory.getbasetemp()
    paths = sorted(base.glob(FILE_GLOB)) + sorted(base.glob("*/" + FILE_GLOB))
    if not paths:
        return
    terminalreporter.section("consistency promises")
    for line in lines(merge(paths)):
        terminalreporter.write_line(line)
