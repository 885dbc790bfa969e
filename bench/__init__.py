"""streamcache benchmarks: ``python -m bench`` (full) or ``python -m bench --quick``.

Every figure is printed next to a baseline run in the same process on the same
data: absolute times drift on a shared machine, ratios much less. Nothing
here is asserted in tests; ``tests/unit/test_bench_*.py`` test the pure helpers.

Modules, one per measurement:

- ``stats``        medians, percentiles, rates, ratios (pure)
- ``table``        terminal tables (pure)
- ``workload``     stream records like a real table's (1 KB items, mixed events)
- ``throughput``   invalidator records/s against the per-record loop and bare SETs
- ``breakdown``    where the time of a 10,000-record batch goes (+ cProfile)
- ``reader``       reader hit/miss latency and concurrent throughput
- ``coldstart``    import time, init time, package size
- ``memory``       peak RSS handling a ~6 MB batch
- ``staleness``    stream lag and invalidation delay through the local loop
- ``machine``      what the figures were measured on
- ``plot``         throughput vs batch size (log-log)
"""
