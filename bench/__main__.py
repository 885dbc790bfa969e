"""``python -m bench [--quick]``: run every measurement, print tables, write results and plot."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    breakdown,
    cluster,
    coldstart,
    docs,
    library,
    machine,
    memory,
    near,
    plot,
    query,
    reader,
    report,
    staleness,
    throughput,
)
from bench.rig import Rig, quiet_stdout
from streamcache.local.redis_server import running_redis

HERE = Path(__file__).resolve().parent
QUICK_OUT = HERE / "quick"  # git-ignored: a quick look never dirties the tree
DOCS_PAGE = HERE.parent / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under 30 s)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where results.json and the plot go (default bench/, quick: bench/quick/)",
    )
    args = parser.parse_args(argv)
    out = args.out or (QUICK_OUT if args.quick else HERE)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine.describe(), "quick": args.quick}
    print(_machine_line(results["machine"]), flush=True)
    with running_redis() as server:
        rig = Rig(server.url, server.port, quick=args.quick)
        _section(results, "throughput", lambda: throughput.run(rig), report.throughput)
        _section(results, "cluster", lambda: cluster.run(rig), report.cluster)
        _section(results, "breakdown", lambda: breakdown.run(rig), report.breakdown)
        _section(results, "reader", lambda: reader.run(rig), report.reader)
        _section(results, "library", lambda: library.run(rig), library.show)
        _section(results, "near_cache", lambda: near.run(rig), near.show)
        _section(results, "query_cache", lambda: query.run(rig), query.show)
        reader_init = results["reader"].get("init")
        _section(results, "cold_start", lambda: coldstart.run(rig, reader_init), report.coldstart)
        _section(results, "memory", lambda: memory.run(rig), report.memory)
        _section(results, "staleness", lambda: staleness.run(rig), report.staleness)
    results["machine"]["load_average_at_end"] = machine.load_average()
    results["targets"] = report.targets(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(report.targets_table(results["targets"]))
    _write(results, out)
    if out == HERE:  # the committed results: the page generated from them follows
        DOCS_PAGE.parent.mkdir(parents=True, exist_ok=True)
        DOCS_PAGE.write_text(docs.page(results))
        print(f"wrote {DOCS_PAGE}")
    return 0


def _section(
    results: dict[str, Any], name: str, measure: Callable[[], Any], show: Callable[[Any], str]
) -> None:
    print(f"\n== {name} ...", flush=True)
    with quiet_stdout():  # Powertools prints EMF metrics and logs on every handler call
        results[name] = measure()
    print(show(results[name]), flush=True)


def _machine_line(m: dict[str, Any]) -> str:
    redis_version = m["redis_server"].split(" sha")[0]
    load = m.get("load_average_at_start")
    return f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, {redis_version}, {m['date']}, load {load}"


def _write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    redis_rps = results["throughput"]["redis_benchmark"].get("requests_per_s")
    saved = plot.throughput(results["throughput"], out / "throughput.png", redis_rps)
    print(
        f"\nwrote {out / 'results.json'}" + (f" and {saved}" if saved else " (matplotlib missing: no plot)")
    )
    print(f"total {results['seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
