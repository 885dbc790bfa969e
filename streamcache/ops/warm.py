"""``python -m streamcache warm``: fill a cold cache from a table scan, under the reader's leases.

After a flush, a failover or a new cluster every read misses. Warming takes
the reader's path for each scanned key, so it can race live writes safely:

1. scan a page of keys (parallel Scan segments, keys only);
2. take the reader's lease on each key (``lease.lua``): keys that already hold
   an answer, or another reader's lease, are left alone;
3. read the leased keys strongly consistently (``BatchGetItem``), after the
   leases were granted;
4. fill under the leases (``fill.lua``): a write whose record was applied
   since step 2 replaced the lease, so its fill is rejected and the cache
   never takes an item older than the stream applied.

The read rate is bounded (``max_rcu``: consumed capacity per second, shared by
all segments); lease ordering is why step 3 cannot reuse the scanned items.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from streamcache import entry
from streamcache.keys import cache_key
from streamcache.read.lookup import Lease, ReaderCache, new_token

Typed = dict[str, Any]


class WarmTable(Protocol):
    """The DynamoDB side: key pages of one scan segment, and consistent reads of keys."""

    def pages(self, segment: int, segments: int) -> Iterator[list[Typed]]: ...

    def read(self, keys: list[Typed]) -> list[Typed | None]: ...


@dataclass
class WarmReport:
    scanned: int = 0
    filled: int = 0
    cached: int = 0  # already held an answer
    busy: int = 0  # another reader held the lease
    raced: int = 0  # a write replaced our lease before the fill: rejected, as it must be

    def add(self, other: WarmReport) -> None:
        for name in ("scanned", "filled", "cached", "busy", "raced"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class RateLimit:
    """Capacity units per second, shared by threads: wait while the budget is spent."""

    def __init__(self, per_second: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_second
        self._clock = clock
        self._tokens = per_second or 0.0
        self._at = clock()
        self._lock = threading.Lock()

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        while self._rate is not None:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
                self._at = now
                if self._tokens > 0:
                    return
                short = -self._tokens / self._rate
            sleep(max(short, 0.001))

    def spend(self, units: float) -> None:
        with self._lock:
            self._tokens -= units


@dataclass(frozen=True)
class Target:
    table: str
    key_names: tuple[str, ...]
    ttl_seconds: int
    negative_ttl_seconds: int
    prefix: str = ""


class Warmer:
    def __init__(self, cache: ReaderCache, target: Target) -> None:
        self._cache = cache
        self._target = target

    def warm_page(self, keys: list[Typed], table: WarmTable) -> WarmReport:
        """Steps 2-4 for one page of keys."""
        report = WarmReport(scanned=len(keys))
        leased: list[tuple[Typed, str, Lease]] = []
        for key in keys:
            name = cache_key(self._target.table, key, self._target.key_names, self._target.prefix)
            claim = self._cache.lease(name, new_token())
            if isinstance(claim, Lease):
                leased.append((key, name, claim))
            elif claim.kind == entry.LEASE:
                report.busy += 1
            else:
                report.cached += 1
        if leased:
            items = table.read([key for key, _, _ in leased])
            for (_, name, lease), item in zip(leased, items, strict=True):
                self._fill(name, lease, item, report)
        return report

    def _fill(self, name: str, lease: Lease, item: Typed | None, report: WarmReport) -> None:
        payload = b"" if item is None else entry.encode_item(item)
        ttl = self._target.ttl_seconds if item is not None else self._target.negative_ttl_seconds
        if self._cache.fill(name, lease, payload, ttl):
            report.filled += 1
        else:
            report.raced += 1
