"""Free-running reader threads against the same keys while the invalidator applies a schedule.

The forced races (a write and its delivery between a reader's DynamoDB read
and its fill) run deterministically inside every world of test_schedules;
this test adds volume: real threads, real interleavings, with every answer
checked against what had been applied when the read began, and the cache
checked for regressions after every step and for convergence at the end.
"""

from __future__ import annotations

import threading

import redis

from consistency.world import KEY_POOL, Stats, World
from streamcache.circuit import CircuitBreaker
from streamcache.local import model
from streamcache.local.schedule import Choices
from streamcache.read.cacheaside import CacheAside, Expiry
from streamcache.read.lookup import ReaderCache

READERS = 4


def reader_loop(world: World, stop: threading.Event, errors: list[str], counts: list[bool]) -> None:
    """Reads until stopped; anything it raises is an error of the test, not a silent thread death."""
    try:
        read_until(world, stop, errors, counts)
    except Exception as err:  # handed to the main thread's assertion
        errors.append(f"reader thread raised {type(err).__name__}: {err}")


def read_until(world: World, stop: threading.Event, errors: list[str], counts: list[bool]) -> None:
    reader = CacheAside(ReaderCache(world.client), world.table, CircuitBreaker(3, 0.05), Expiry(600, 600))
    i = 0
    while not stop.is_set():
        table, key = world.keys[i % len(world.keys)]
        i += 1
        h = world.truth.history(table, key)
        floor = world.applied_floor.get(h.cache_key, 0)
        result = reader.lookup(table, h.key, h.cache_key)
        shown = h.absent_indexes() if result.item is None else [model.state_of_item(h, result.item)]
        if max(shown) < floor:
            errors.append(f"{h.cache_key}: answered {shown} from {result.source}, {floor} was applied")
        counts.append(result.source == "cache")  # a hit


def test_free_running_readers_never_see_the_past(cache: redis.Redis, stats: Stats) -> None:
    for seed in range(3):
        cache.flushall()
        world = World(cache, Choices.seeded(seed), model.VIEWS[seed % 3], 10**21 - 40, stats)
        world.keys = KEY_POOL[:3]  # few keys: readers and the invalidator collide constantly
        stop = threading.Event()
        errors: list[str] = []
        counts: list[bool] = []
        threads = [
            threading.Thread(target=reader_loop, args=(world, stop, errors, counts)) for _ in range(READERS)
        ]
        for t in threads:
            t.start()
        try:
            for _ in range(300):
                world.tick()
        finally:
            stop.set()
            for t in threads:
                t.join()
        world.drain()
        world.check_converged()
        assert not errors, errors[:5]
        assert len(counts) > 100  # the readers really ran
        stats.reads += len(counts)
        stats.hits += sum(counts)
        stats.get_items += len(counts) - sum(counts)
        stats.schedules += 1
