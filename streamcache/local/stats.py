"""``python -m streamcache stats``: what a Redis holds, per table and per entry kind, and its counters.

Keys are walked with ``SCAN`` (never ``KEYS``: it blocks the server) up to a
limit, and each key's kind is read with ``GETRANGE key 0 0`` in pipelines, so
the walk costs a few round trips per thousand keys. The query cache's
partition markers and pages are counted under their table. Hits and misses are
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
SAMPLES = "(the consistency checker's samples)"
PIPELINE = 500


@dataclass
class Stats:
    tables: dict[str, Counter[str]] = field(default_factory=dict)
    scanned: int = 0
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    nodes: int = 1


def table_of(key: str, prefix: str = "") -> str | None:
    """The table a cache key belongs to (its escaped first component, unescaped), or None."""
    if not key.startswith(prefix):
        return None
    table, sep, _ = key[len(prefix) :].partition(SEPARATOR)
    if not sep or not table:
        return None
    return table.replace("%2D", "-").replace("%25", "%")


def query_key_of(key: str, prefix: str = "") -> tuple[str, str] | None:
    """(table, "query markers" or "query pages") for a query-cache key (``prefix{table/index/value}q``)."""
    rest = key[len(prefix) :] if key.startswith(prefix) else ""
    table, slash, _ = rest[1:].partition("/")
    if not rest.startswith("{") or not slash or not table:
        return None
    kind = "query markers" if rest.endswith("}q") else "query pages"
    return table.replace("%2D", "-").replace("%25", "%"), kind


def collect(client: Any, prefix: str = "", limit: int = 100_000) -> Stats:
    from streamcache.ops.sampling import samples_key

    stats, samples = Stats(), samples_key(prefix)
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
            query = query_key_of(name, prefix)
            if query is not None:
                table, kind = query
            else:
                table = SAMPLES if name == samples else table_of(name, prefix) or OTHER
                kind = _KIND_WORDS.get(head, OTHER)
            stats.tables.setdefault(table, Counter())[kind] += 1
    stats.info = server_info(client)
    stats.nodes = len(_per_node(client, "server"))
    return stats


SUMMED = (
    "used_memory",
    "used_memory_peak",
    "maxmemory",
    "keyspace_hits",
    "keyspace_misses",
    "expired_keys",
    "evicted_keys",
)


def server_info(client: Any) -> dict[str, Any]:
    """``INFO memory`` and ``INFO stats``; on a cluster, the counters summed over its primaries."""
    nodes = [
        {**memory, **stats}
        for memory, stats in zip(_per_node(client, "memory"), _per_node(client, "stats"), strict=True)
    ]
    merged = dict(nodes[0])
    for name in SUMMED:
        merged[name] = sum(int(node.get(name, 0)) for node in nodes)
    return merged


def _per_node(client: Any, section: str) -> list[dict[str, Any]]:
    """One INFO section per primary (a single node: one)."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        answers = client.info(section, target_nodes=RedisCluster.PRIMARIES)
        return [dict(answer) for answer in answers.values()]
    return [dict(client.info(section))]


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


def _mib(info: dict[str, Any], name: str) -> str:
    return f"{int(info.get(name, 0)) / 2**20:.2f} MiB"


def report(stats: Stats, say: Callable[[str], None] = print) -> None:
    info = stats.info
    total = "at least " if stats.truncated else ""
    say(f"keys: {total}{stats.scanned} scanned")
    for table in sorted(stats.tables):
        counts = stats.tables[table]
        kinds = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
        say(f"  {table}: {sum(counts.values())} ({kinds})")
    say(
        f"memory: {_mib(info, 'used_memory')} used, peak {_mib(info, 'used_memory_peak')}, "
        f"maxmemory {_mib(info, 'maxmemory') if info.get('maxmemory') else 'none'} "
        f"({info.get('maxmemory_policy', '?')})"
        + (f", over {stats.nodes} primaries" if stats.nodes > 1 else "")
    )
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    rate = f"{100.0 * hits / (hits + misses):.1f}% hits" if hits + misses else "no lookups yet"
    say(
        f"redis lookups since start: {hits} hits, {misses} misses ({rate}); "
        f"{info.get('expired_keys', 0)} expired, {info.get('evicted_keys', 0)} evicted"
    )
