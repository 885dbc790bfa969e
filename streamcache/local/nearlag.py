"""How much staleness the near cache adds over Redis, measured the way a busy reader sees it.

A writer replaces one key's entry; a reader reads it steadily through a
``ReaderCache`` with a near cache (as the reader Lambda and the library do).
Per write: the milliseconds from the writer's acknowledgement until the
reader was served the new entry. Used by ``make demo`` and ``make bench``.
"""

from __future__ import annotations

import time

import redis

from streamcache import entry
from streamcache.read.lookup import ReaderCache
from streamcache.read.near import NearCache, SingleNode

KEY = "streamcache-near-lag-probe"
GIVE_UP_S = 5.0  # a write never seen: reported as this long, never an endless loop


def near_staleness_ms(url: str, writes: int, bound_s: float = 0.1) -> list[float] | None:
    """Delays per write, or None when the server has no client tracking (near cache off)."""
    reader_client = redis.Redis.from_url(url)
    writer = redis.Redis.from_url(url)
    near = NearCache(SingleNode(reader_client), max_staleness_s=bound_s)
    reads = ReaderCache(reader_client, near=near)
    try:
        writer.set(KEY, _value(0))
        reads.get(KEY)
        if not near.enabled:
            return None
        return [_delay_ms(reads, writer, n) for n in range(1, writes + 1)]
    finally:
        writer.delete(KEY)
        near.close()
        reader_client.close()
        writer.close()


def _delay_ms(reads: ReaderCache, writer: redis.Redis, n: int) -> float:
    version = str(n).zfill(entry.VERSION_DIGITS)
    writer.set(KEY, _value(n))
    acked = time.perf_counter()
    deadline = acked + GIVE_UP_S
    while time.perf_counter() < deadline:
        found = reads.get(KEY)
        if found is not None and found.version == version:
            break
        time.sleep(0.0002)  # a reader reading steadily, as a busy service does
    delay = (time.perf_counter() - acked) * 1000
    time.sleep(0.002)
    return delay


def _value(n: int) -> bytes:
    return entry.ITEM + str(n).zfill(entry.VERSION_DIGITS).encode() + b'{"probe":{"N":"1"}}'
