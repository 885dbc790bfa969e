"""Results -> terminal tables and the targets check. Pure: data in, text out."""

from __future__ import annotations

from typing import Any

from bench.stats import ratio
from bench.table import number, render, times

Results = dict[str, Any]
CLUSTER_SIZES = ("100", "1000", "10000")


def cluster(result: Results) -> str:
    sizes = [str(n) for n in result["sizes"]]
    rows = [[name, *(series[s] for s in sizes)] for name, series in result["records_per_s"].items()]
    table = render(
        ["records/s by batch size", *sizes], rows, "Invalidator throughput: cluster vs single node"
    )
    by_size = result.get("cluster_over_single") or {"10000": result["cluster_over_single_at_10000"]}
    ratios = ", ".join(f"@{size} {times(value)}" for size, value in by_size.items())
    return table + f"\ncluster / single node: {ratios}"


def throughput(result: Results) -> str:
    sizes = [str(s) for s in result["sizes"]]
    rows = [[name, *(by_size.get(s) for s in sizes)] for name, by_size in result["records_per_s"].items()]
    text = [render(["records/s by batch size", *sizes], rows, "Invalidator throughput")]
    distinct = result.get("distinct_keys_10000") or {}
    if distinct:
        cells = ", ".join(f"{name} {number(rps)}/s" for name, rps in distinct.items())
        text.append(f"10,000 records on 10,000 distinct keys (no dedup): {cells}")
    for name, commands in (result.get("server_us_per_call_10000_distinct") or {}).items():
        cells = ", ".join(f"{command} {us:.2f} us" for command, us in commands.items())
        text.append(f"  server time per call ({name}, INFO commandstats): {cells}")
    bench = result.get("redis_benchmark") or {}
    if bench.get("available"):
        text.append(
            f"{bench['command']}: {number(bench['requests_per_s'])} SET/s (C client, the server's limit)"
        )
    else:
        text.append(f"redis-benchmark: {bench.get('note', 'not run')}")
    ping = result.get("ping_round_trip_us")
    if ping:
        p50, p99 = number(ping["p50"]), number(ping["p99"])
        text.append(
            f"redis-py PING round trip, back to back: p50 {p50} us, p99 {p99} us"
            " (the Latency table's PING is timed in the rotation, like the contenders)"
        )
    text += [f"{name}: {times(value)}" for name, value in result["ratios_at_10000"].items()]
    by_size = result.get("ratios_by_size") or {}
    if by_size:
        names = list(next(iter(by_size.values())))
        rows = [[name, *(by_size[s][name] for s in by_size)] for name in names]
        text.append(render(["throughput ratio by batch size", *by_size], [_ratio_row(r) for r in rows]))
    if result.get("latency_us"):
        text.append(latency(result["latency_us"]))
    log_line = result.get("log_line_us")
    if log_line:
        cells = ", ".join(f"{name} {_p50_p99(figure)}" for name, figure in log_line.items())
        text.append(f"the handler's per-batch INFO line, us p50 / p99: {cells}")
    return "\n".join(text)


def _ratio_row(row: list[Any]) -> list[Any]:
    return [row[0], *(times(value) for value in row[1:])]


def _p50_p99(figure: dict[str, float]) -> str:
    return f"{figure['p50']:.0f} / {figure['p99']:.0f}"


def latency(by_size: Results) -> str:
    """End-to-end microseconds per invocation, p50 / p99, by batch size."""
    sizes = list(by_size)
    names = list(by_size[sizes[0]])
    rows = [
        [name, *(f"{by_size[s][name]['p50']:.0f} / {by_size[s][name]['p99']:.0f}" for s in sizes)]
        for name in names
    ]
    return render(["us per invocation (p50 / p99)", *(f"{s} records" for s in sizes)], rows, "Latency")


def breakdown(result: Results) -> str:
    rows = [[step, ms] for step, ms in result["steps_ms"].items()]
    text = [render(["step (10,000 records)", "ms"], rows, "Where the time goes")]
    for order in ("by_cumulative", "by_own_time"):
        rows = [
            [f["function"], f["calls"], f["own_ms"], f["cumulative_ms"]] for f in result["profile"][order]
        ]
        text.append(render(["function", "calls", "own ms", "cum ms"], rows, f"cProfile, {order}"))
    return "\n\n".join(text)


def reader(result: Results) -> str:
    if not result.get("available"):
        return f"Reader: reader not available ({result.get('note', '')})"
    rows = [
        [
            name,
            r["p50_us"],
            r["p99_us"],
            r.get("baseline_p50_us"),
            r.get("baseline_p99_us"),
            times(r.get("ratio_p50")),
        ]
        for name, r in result["latency"].items()
    ]
    text = [
        render(["reader", "p50 us", "p99 us", "base p50", "base p99", "p50 ratio"], rows, "Reader latency")
    ]
    near = result.get("throughput_hits_per_s_near_cache", {})
    rows = [
        [f"{threads} threads", rps, near.get(threads), times(ratio(near.get(threads), rps))]
        for threads, rps in result["throughput_hits_per_s"].items()
    ]
    text.append(render(["concurrent callers", "hits/s", "near cache on", "ratio"], rows))
    text += result.get("notes", [])
    return "\n".join(text)


def coldstart(result: Results) -> str:
    rows = []
    for module, figure in result["import_ms"].items():
        if figure.get("available"):
            heavy = ", ".join(f"{name} {ms:.0f}" for name, ms in figure["heaviest_packages_ms"][:4])
            rows.append([module, figure["median_ms"], str(figure["boto3_imported"]), heavy])
        else:
            rows.append([module, None, "-", figure.get("error", "")])
    text = [render(["import (median)", "ms", "boto3 loaded", "heaviest packages (ms)"], rows, "Cold start")]
    for name, init in result["init"].items():
        if init:
            text.append(f"{name} init: " + ", ".join(f"{k} {v:.1f}" for k, v in init.items() if _is_num(v)))
    package = result["package"]
    if package.get("available"):
        text.append(
            "zipped packages: " + ", ".join(f"{n} {b / 1e6:.2f} MB" for n, b in package["bytes"].items())
        )
    else:
        text.append(f"zipped packages: {package['note']}")
    return "\n".join(text)


def memory(result: Results) -> str:
    if "error" in result:
        return f"Memory: {result['error']}"
    return (
        f"Memory (VmHWM): bare interpreter {result['bare_interpreter_mb']:.1f} MB, handler imported "
        f"{result['handler_imported_mb']:.1f} MB, after a {result['event_bytes'] / 1e6:.2f} MB event "
        f"({result['records']} records) {result['peak_after_batch_mb']:.1f} MB "
        f"(+{result['batch_cost_mb']:.1f} MB)"
    )


def staleness(result: Results) -> str:
    if not result.get("available"):
        return f"Staleness: local loop not available ({result.get('note', '')})"
    rows = [
        [name, d["p50"], d["p99"], d["max"], d["count"]] for name, d in result["distributions_ms"].items()
    ]
    return "\n".join(
        [render(["ms", "p50", "p99", "max", "n"], rows, "Staleness (local loop)"), *result["notes"]]
    )


def targets(results: Results) -> list[dict[str, Any]]:
    """Each target with its measured value and whether it was met (None: not measured)."""
    ratios = results["throughput"]["ratios_at_10000"]
    by_size = results["throughput"].get("ratios_by_size", {})
    small = [
        (f"handler vs per-record loop @{n}", by_size.get(n, {}).get("handler / per-record loop"), ">=", 1.0)
        for n in ("1", "10", "100")
    ]
    cluster = results.get("cluster", {}).get("cluster_over_single", {})
    clustered = [
        (f"cluster vs single node @{n}", cluster.get(n), ">=", 0.8) for n in ("100", "1000", "10000")
    ]
    checks = [
        ("throughput vs per-record loop @10k", ratios["streamcache / per-record loop"], ">=", 10.0),
        ("throughput vs bare pipelined SET @10k", ratios["streamcache / bare pipelined SET"], ">=", 0.5),
        ("distinct keys vs bare pipelined SET @10k", _distinct_ratio(results), ">=", 0.5),
        *small,
        ("process() @1 minus PING round trip, us", _process_overhead_us(results), "<=", 30.0),
        *clustered,
        ("invalidator import ms", _import_ms(results, "invalidator.handler"), "<", 250.0),
        ("reader hit p50 vs GET+decode", _reader_ratio(results, "hit"), "<=", 1.3),
        ("reader miss p50 vs boto3 get_item", _reader_ratio(results, "miss"), "<=", 1.2),
    ]
    return [_check(*check) for check in checks]


def _check(name: str, value: float | None, op: str, limit: float) -> dict[str, Any]:
    met = None
    if value is not None:
        met = {">=": value >= limit, "<": value < limit, "<=": value <= limit}[op]
    return {"target": f"{name} {op} {limit:g}", "value": value, "met": met}


def targets_table(checks: list[dict[str, Any]]) -> str:
    rows = [
        [c["target"], c["value"], {True: "met", False: "NOT met", None: "not measured"}[c["met"]]]
        for c in checks
    ]
    return render(["target", "measured", ""], rows, "Targets")


def _distinct_ratio(results: Results) -> float | None:
    distinct = results["throughput"].get("distinct_keys_10000") or {}
    return ratio(distinct.get("streamcache"), distinct.get("bare pipelined SET"))


def _process_overhead_us(results: Results) -> float | None:
    """p50 of one ``process()`` of one record minus the p50 of a redis-py PING timed in the same rotation.

    (Results from before the PING joined the rotation: the PING timed alone, in a tight loop.)
    """
    at_one = results["throughput"].get("latency_us", {}).get("1", {})
    one = at_one.get("streamcache")
    ping = at_one.get("PING (one round trip)") or results["throughput"].get("ping_round_trip_us")
    return None if not one or not ping else float(one["p50"] - ping["p50"])


def _import_ms(results: Results, module: str) -> float | None:
    figure = results.get("cold_start", {}).get("import_ms", {}).get(module, {})
    return figure.get("median_ms")


def _reader_ratio(results: Results, kind: str) -> float | None:
    reader_result = results.get("reader", {})
    if not reader_result.get("available"):
        return None
    return reader_result["latency"].get(kind, {}).get("ratio_p50")


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
