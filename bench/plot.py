"""Throughput vs batch size, log-log: streamcache and each baseline (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def throughput(result: dict[str, Any], path: Path, redis_benchmark_rps: float | None) -> Path | None:
    """Save the plot; None (and nothing written) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, by_size in result["records_per_s"].items():
        sizes = sorted(int(s) for s in by_size)
        axes.plot(sizes, [by_size[str(s)] for s in sizes], marker="o", label=name)
    if redis_benchmark_rps:
        axes.axhline(redis_benchmark_rps, color="grey", linestyle="--", label="redis-benchmark SET -P 1000")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("records per batch")
    axes.set_ylabel("records / s")
    axes.set_title("Invalidator throughput (1,000 keys, ~1 KB items)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
