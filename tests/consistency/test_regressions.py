"""Minimal schedules for the classic races, kept as regression tests.

The first one was found by the property test: a reader fill newer than the
stream, then two older records in separate deliveries, stepped the cache back
(F(state 3) -> X(record 1) -> I(record 2)). apply.lua keeps such keys
invalidate-only for records created up to FILL_CLOCK_MARGIN_MS after the fill
(the world runs with a 2 ms margin), and lets a record created later end fill
mode: the next three tests pin both sides of that line.
"""

from __future__ import annotations

import time

import redis

from consistency.world import FILL_MARGIN_MS, KEY_POOL, Mix, Stats, World
from streamcache import entry
from streamcache.local.schedule import ERROR, OK, PARTIAL, Choices, Invocation


def world(cache: redis.Redis, view: str = "NEW_AND_OLD_IMAGES") -> World:
    return World(cache, Choices([]), view, 10**21 - 2, Stats())


def deliver(w: World, *indexes: int) -> None:
    w.invoke(Invocation(OK, indexes, indexes))
    w.check_monotonic()


def test_fill_newer_than_the_stream_is_never_stepped_back(cache: redis.Redis) -> None:
    # GIVEN three writes to one item, none delivered yet, and a reader that fills state 3
    w = world(cache)
    table, key = KEY_POOL[0]
    for op in ("INSERT", "MODIFY", "MODIFY"):
        w.truth.write(table, key, op)
    h = w.truth.history(table, key)
    assert w.reader.lookup(table, h.key, h.cache_key).filled
    w.check_monotonic()
    # WHEN the stream delivers the older records one invocation at a time
    deliver(w, 0)
    deliver(w, 1)  # used to write I(state 2) over X(record 1): back from state 3
    deliver(w, 2)
    # THEN the cache never showed an older state, and it converges
    assert entry.decode(cache.get(h.cache_key)).kind == entry.INVALIDATED
    w.check_converged()


def past_the_margin() -> None:
    """Let the clock move past FILL_CLOCK_MARGIN_MS (and ms flooring) after a fill."""
    time.sleep((FILL_MARGIN_MS + 3) / 1000)


def test_write_after_the_fill_serves_its_image_without_a_getitem(cache: redis.Redis) -> None:
    # GIVEN an item a reader filled (one GetItem)
    w = world(cache)
    table, key = KEY_POOL[0]
    w.truth.write(table, key, "INSERT")
    h = w.truth.history(table, key)
    assert w.reader.lookup(table, h.key, h.cache_key).filled
    fill_ms = entry.decode(cache.get(h.cache_key)).fill_ms
    assert fill_ms is not None and w.table.calls == 1
    deliver(w, 0)  # created before the fill: invalidate-only
    assert entry.decode(cache.get(h.cache_key)).kind == entry.INVALIDATED
    assert w.reader.lookup(table, h.key, h.cache_key).filled  # refill: GetItem 2
    # WHEN writes happen after the fill (created > fill + margin) and are delivered
    for n, op in enumerate(("MODIFY", "MODIFY", "REMOVE", "INSERT"), start=1):
        past_the_margin()
        w.truth.write(table, key, op)
        deliver(w, n)
        # THEN the key serves each new state from the stream, and reads are hits
        assert entry.decode(cache.get(h.cache_key)).kind in (entry.ITEM, entry.TOMBSTONE)
        result = w.reader.lookup(table, h.key, h.cache_key)
        assert result.source == "cache"
        assert result.item == h.states[-1].image
    assert w.table.calls == 2
    w.check_converged()


def test_record_created_before_the_fill_but_delivered_after_only_invalidates(cache: redis.Redis) -> None:
    # GIVEN three writes, a fill of the newest (state 3), then a write after the fill
    w = world(cache)
    table, key = KEY_POOL[1]
    for op in ("INSERT", "MODIFY", "MODIFY"):
        w.truth.write(table, key, op)
    h = w.truth.history(table, key)
    assert w.reader.lookup(table, h.key, h.cache_key).filled
    fill_ms = entry.decode(cache.get(h.cache_key)).fill_ms
    past_the_margin()
    w.truth.write(table, key, "MODIFY")
    # WHEN the records written before the fill arrive, one invocation each
    for n in range(3):
        deliver(w, n)
        # THEN the key stays invalidate-only, carrying the fill's stamp
        held = entry.decode(cache.get(h.cache_key))
        assert (held.kind, held.fill_ms) == (entry.INVALIDATED, fill_ms)
    # and the record written after the fill ends fill mode with its image (state 4)
    deliver(w, 3)
    assert w.truth.candidates(h.cache_key, cache.get(h.cache_key)) == [4]
    w.check_converged()


def test_fill_that_raced_a_write_and_its_delivery_is_rejected(cache: redis.Redis) -> None:
    # GIVEN an item in state 1, delivered
    w = world(cache, "KEYS_ONLY")
    table, key = KEY_POOL[1]
    w.truth.write(table, key, "INSERT")
    deliver(w, 0)
    h = w.truth.history(table, key)

    # WHEN a reader reads DynamoDB (state 1), then a write and its delivery land, then it fills
    def race() -> None:
        w.truth.write(table, key, "MODIFY")
        deliver(w, 1)

    w.table.after_read = race
    result = w.reader.lookup(table, h.key, h.cache_key)
    # THEN the stale fill is rejected: the key is invalidated, not state 1
    assert result.fill_rejected
    w.check_monotonic()
    assert w.truth.candidates(h.cache_key, cache.get(h.cache_key)) is None
    w.check_converged()


def test_duplicates_rewinds_and_bisected_halves_never_regress(cache: redis.Redis) -> None:
    w = world(cache)
    table, key = KEY_POOL[2]
    for op in ("INSERT", "MODIFY", "MODIFY", "REMOVE", "INSERT", "TTL"):
        w.truth.write(table, key, op)
    h = w.truth.history(table, key)
    deliver(w, 0, 1, 2, 3, 4, 5)
    w.invoke(Invocation(ERROR, (0, 1, 2, 3, 4, 5), (0, 2)))  # failed after applying some
    for half in ((0, 1, 2), (3, 4, 5), (0,), (1, 2)):  # bisected and re-bisected halves
        deliver(w, *half)
    w.invoke(Invocation(PARTIAL, (2, 3, 4), (2, 3, 4), 1))
    deliver(w, 3, 4)  # re-delivery from the checkpoint
    assert w.truth.candidates(h.cache_key, cache.get(h.cache_key)) == h.absent_indexes()
    w.check_converged()


def test_hyphenated_and_respelled_keys_stay_apart(cache: redis.Redis) -> None:
    # GIVEN items whose naive "-".join keys collide ("a-b"/"c" vs "a"/"b-c"; t-1/"a" vs t/"1"-"a")
    w = world(cache)
    for table, key in KEY_POOL:
        w.truth.write(table, key, "INSERT")
    w.truth.write("n", {"num": {"N": "1.50"}}, "MODIFY")  # the same item as 1.5
    deliver(w, *range(len(w.truth.records)))
    # THEN every item has its own key, holding its own latest state
    assert len(set(w.truth.by_cache_key)) == len(KEY_POOL)
    for ck, value in w.contents().items():
        assert w.truth.candidates(ck, value) == [w.truth.by_cache_key[ck].latest]
    w.check_converged()


def test_redrive_invalidates_a_key_the_failure_destination_left_stale(cache: redis.Redis) -> None:
    w = world(cache)
    table, key = KEY_POOL[3]
    w.truth.write(table, key, "INSERT")
    w.truth.write(table, key, "MODIFY")
    deliver(w, 0)
    w.redrive((1,))  # record 1 went to the failure destination
    h = w.truth.history(table, key)
    assert w.truth.candidates(h.cache_key, cache.get(h.cache_key)) is None
    w.check_converged()


def test_forty_digit_versions_one_apart_are_ordered(cache: redis.Redis) -> None:
    # GIVEN two writes whose sequence numbers differ in the 40th digit only: as doubles
    # (Lua's numbers) they are one and the same number
    w = World(cache, Choices([]), "NEW_AND_OLD_IMAGES", 10**39 - 2, Stats(), gaps=[1])
    table, key = KEY_POOL[0]
    w.truth.write(table, key, "INSERT")
    w.truth.write(table, key, "MODIFY")
    first, second = (int(r["dynamodb"]["SequenceNumber"]) for r in w.truth.records)
    assert second == first + 1 and float(first) == float(second)
    h = w.truth.history(table, key)
    # WHEN they arrive in order, then the older one again (a re-delivery)
    deliver(w, 0)
    deliver(w, 1)
    deliver(w, 0)
    # THEN the newer one's image stays
    assert w.truth.candidates(h.cache_key, cache.get(h.cache_key)) == [2]
    w.check_converged()


def test_a_late_stamped_record_within_the_margin_only_invalidates_a_fill(cache: redis.Redis) -> None:
    # GIVEN DynamoDB's clock 999 ms ahead of Redis's, within a 1000 ms FILL_CLOCK_MARGIN_MS (the default),
    # and a write not yet delivered when a reader fills the item's newer state
    mix = Mix(keys=(0,), clock_skew_ms=999, fill_margin_ms=1000)
    w = World(cache, Choices([]), "NEW_AND_OLD_IMAGES", 10**21 - 2, Stats(), mix=mix)
    table, key = KEY_POOL[0]
    w.truth.write(table, key, "INSERT")
    w.truth.write(table, key, "MODIFY")
    h = w.truth.history(table, key)
    assert w.reader.lookup(table, h.key, h.cache_key).filled  # state 2
    # WHEN the first record arrives, stamped later than the fill by Redis's clock
    created_ms = int(w.truth.records[0]["dynamodb"]["ApproximateCreationDateTime"] * 1000)
    assert created_ms > entry.decode(cache.get(h.cache_key)).fill_ms
    deliver(w, 0)
    # THEN it invalidates (never writes state 1 over state 2), and the stream converges
    assert entry.decode(cache.get(h.cache_key)).kind == entry.INVALIDATED
    deliver(w, 1)
    w.check_converged()
