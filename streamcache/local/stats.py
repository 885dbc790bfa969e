"""``python -m streamcache stats``: what a Redis holds, per table and per entry kind, and its counters.

Keys are walked with ``SCAN`` (never ``KEYS``: it blocks the server) up to a
limit, and each key's kind is read with ``GETRANGE key 0 0`` in pipelines, so
the walk costs a few round trips per thousand keys. Hits and misses are
Redis's own (every GET, the invalidator's too); the reader's own hit rate is
its ``CacheHit`` / ``CacheMiss`` metrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from streamcache import entry
from streamcache.keys import SEPARATOR

_KIND_WORDS = {
    entry.ITEM: "items",
    entry.TOMBSTONE: "tombstones",
    entry.INVALIDATED: "invalidations",
    entry.LEASE: "leases",
    entry.FILL: "fills",
}
OTHER = "other"
PIPELINE = 500


@dataclass
class Stats:
    tables: dict[str, Counter[str]] = field(default_factory=dict)
    scanned: int = 0
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def table_of(key: str, prefix: str = "") -> str | None:
    """The table a cache key belongs to (its escaped first component, unescaped), or None."""
    if not key.startswith(prefix):
        return None
    table, sep, _ = key[len(prefix) :].partition(SEPARATOR)
    if not sep or not table:
        return None
    return table.replace("%2D", "-").replace("%25", "%")


def collect(client: Any, prefix: str = "", limit: int = 100_000) -> Stats:
    stats = Stats()
    keys = client.scan_iter(match=f"{_glob_escape(prefix)}*", count=1000)
    for chunk in _chunks(keys, PIPELINE):
        if stats.scanned >= limit:
            stats.truncated = True
            break
        batch = chunk[: limit - stats.scanned]
        stats.truncated = len(batch) < len(chunk)
        stats.scanned += len(batch)
        for key, head in zip(batch, _heads(client, batch), strict=True):
            name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
            table = table_of(name, prefix) or OTHER
            stats.tables.setdefault(table, Counter())[_KIND_WORDS.get(head, OTHER)] += 1
    stats.info = {**client.info("memory"), **client.info("stats")}
    return stats


def _heads(client: Any, keys: list[Any]) -> list[bytes]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.getrange(key, 0, 0)
    return [h if isinstance(h, bytes) else b"" for h in pipe.execute(raise_on_error=False)]


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(islice(items, size)):
        yield chunk


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def report(stats: Stats, say: Callable[[str], None] = print) -> None:
    info = stats.info
    total = "at least " if stats.truncated else ""
    say(f"keys: {total}{stats.scanned} scanned")
    for table in sorted(stats.tables):
        counts = stats.tables[table]
        kinds = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
        say(f"  {table}: {sum(counts.values())} ({kinds})")
    say(
        f"memory: {info.get('used_memory_human', '?')} used, peak {info.get('used_memory_peak_human', '?')}, "
        f"maxmemory {info.get('maxmemory_human', '?')} ({info.get('maxmemory_policy', '?')})"
    )
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    rate = f"{100.0 * hits / (hits + misses):.1f}% hits" if hits + misses else "no lookups yet"
    say(
        f"redis lookups since start: {hits} hits, {misses} misses ({rate}); "
        f"{info.get('expired_keys', 0)} expired, {info.get('evicted_keys', 0)} evicted"
    )
