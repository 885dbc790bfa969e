"""The consistency checker against a real redis-server: it finds what is wrong, and only that.

Planted inconsistencies (an entry older than its record, a lost invalidation,
a fill older than the record) must be found and repaired without hiding a
newer write; over generated schedules - duplicates, rewinds, bisects,
redrives, fills racing records - with every record sampled and checked after
every step, it must find nothing (zero false positives).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
import redis

from consistency.world import KEY_POOL, SCHEMAS, SEQUENCE_STARTS, TTL_S, Mix, Stats, World
from streamcache import entry
from streamcache.local.model import VIEWS
from streamcache.local.schedule import Choices
from streamcache.ops import sampling
from streamcache.ops.checker import Checker, RepairOptions, Report
from streamcache.ops.sampling import Sample, Sampler, SamplingConfig
from streamcache.protocol import SKIPPED, Scripts, apply_commands
from streamcache.records import Command

KEY = "t-a-b"
V100, V200, V300 = (str(v).zfill(entry.VERSION_DIGITS) for v in (100, 200, 300))


class Clock:
    """Virtual seconds: samples fall due when the test says so, not when the machine gets to it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(cache: redis.Redis, clock: Clock, delays: tuple[int, ...] = (10, 60), repair: bool = False):
    config = SamplingConfig(rate=1.0, delays_s=delays)
    options = RepairOptions(TTL_S, {"fill_margin_ms": 0}) if repair else None
    checker = Checker(cache, config, options, clock=clock)
    checker.arm()
    return Sampler(config, clock=clock), checker


def put(cache: redis.Redis, kind: bytes, version: str, payload: bytes = b"") -> None:
    cache.set(KEY, kind + version.encode() + payload)


def apply(cache: redis.Redis, kind: bytes, version: str, created_ms: int = 0) -> int:
    command = Command(
        KEY, kind, version, b'{"pk":{"S":"a"}}' if kind == entry.ITEM else b"", "test", created_ms
    )
    (outcome,) = apply_commands(cache, Scripts.register(cache).apply, [command], TTL_S, fill_margin_ms=0)
    return int(outcome)  # type: ignore[arg-type]


def check_at(checker: Checker, clock: Clock, seconds: float) -> Report:
    clock.now += seconds
    return checker.run()


# -- planted inconsistencies -------------------------------------------------------


def test_entry_older_than_its_record_is_found(cache: redis.Redis, clock: Clock) -> None:
    # GIVEN record 200 applied and sampled, then the key loses it (a failover to a replica without it)
    sampler, checker = make(cache, clock)
    apply(cache, entry.ITEM, V200)
    assert sampler.add(cache, [Sample(KEY, V200, 1)]) == 1
    put(cache, entry.ITEM, V100, b"{}")
    # WHEN both checks run
    early, final = check_at(checker, clock, 10), check_at(checker, clock, 50)
    # THEN both flag it: behind at 10 s and still at 60 s is wrong, not slow
    assert (early.early_checked, early.early_inconsistent) == (1, 1)
    assert (final.final_checked, final.final_inconsistent) == (1, 1)
    (finding,) = final.findings
    assert (finding.sample.key, finding.verdict.held, finding.delay_s) == (KEY, "I@100", 60)


def test_lost_invalidation_is_found(cache: redis.Redis, clock: Clock) -> None:
    # GIVEN the key serves record 100's item, and the delete (record 200) was handed over but never written
    sampler, checker = make(cache, clock, delays=(1,))
    put(cache, entry.ITEM, V100, b"{}")
    tombstone = Command(KEY, entry.TOMBSTONE, V200, b"", "remove", 1)
    assert sampler.offer(cache, [tombstone], {KEY: 1}) == 1
    # WHEN the check runs
    report = check_at(checker, clock, 1)
    # THEN it names the key and what it held
    assert report.final_inconsistent == 1
    assert report.findings[0].verdict.held == "I@100"


def test_fill_stamped_before_the_record_is_found_after_it_is_not(cache: redis.Redis, clock: Clock) -> None:
    sampler, checker = make(cache, clock, delays=(1,))
    fill_ms = int(time.time() * 1000)
    put(cache, entry.FILL, V100, str(fill_ms).encode() + b"{}")
    sampler.add(cache, [Sample(KEY, V200, fill_ms + 5), Sample(KEY, V300, fill_ms)])
    report = check_at(checker, clock, 1)
    assert (report.final_checked, report.final_inconsistent) == (2, 1)
    assert report.findings[0].sample.version == V200


def test_slow_is_told_from_wrong(cache: redis.Redis, clock: Clock) -> None:
    # GIVEN record 200 sampled while the key still holds 100 (a retry is in flight)
    sampler, checker = make(cache, clock)
    put(cache, entry.ITEM, V100, b"{}")
    sampler.add(cache, [Sample(KEY, V200, 1)])
    early = check_at(checker, clock, 10)
    # WHEN the retry applies it before the last check
    apply(cache, entry.ITEM, V200)
    final = check_at(checker, clock, 50)
    # THEN it was behind at 10 s (slow) and consistent at 60 s
    assert early.early_inconsistent == 1
    assert (final.final_checked, final.final_inconsistent) == (1, 0)


def test_repair_invalidates_and_never_hides_a_newer_write(cache: redis.Redis, clock: Clock) -> None:
    sampler, checker = make(cache, clock, delays=(1,), repair=True)
    put(cache, entry.ITEM, V100, b"{}")
    sampler.add(cache, [Sample(KEY, V200, 1)])
    report = check_at(checker, clock, 1)
    assert report.repaired == 1
    held = entry.decode(cache.get(KEY))
    assert (held.kind, held.version) == (entry.INVALIDATED, V200)
    # a newer record still writes over the repair; an older one does not
    assert apply(cache, entry.ITEM, V300) != SKIPPED
    assert apply(cache, entry.INVALIDATED, V200) == SKIPPED
    assert entry.decode(cache.get(KEY)).version == V300


def test_repair_of_a_key_already_newer_is_skipped(cache: redis.Redis, clock: Clock) -> None:
    _, checker = make(cache, clock, delays=(1,), repair=True)
    put(cache, entry.ITEM, V300, b"{}")
    assert checker._repair_keys([Sample(KEY, V200, 1)]) == 0
    assert entry.decode(cache.get(KEY)).kind == entry.ITEM


def test_nothing_is_sampled_unless_a_checker_armed_the_set(cache: redis.Redis, clock: Clock) -> None:
    sampler = Sampler(SamplingConfig(rate=1.0), clock=clock)
    assert sampler.add(cache, [Sample(KEY, V200, 1)]) == 0
    assert cache.keys("*") == []


def test_a_batch_that_found_redis_unreachable_adds_no_samples(cache: redis.Redis, clock: Clock) -> None:
    sampler, checker = make(cache, clock, delays=(1,))
    command = Command(KEY, entry.ITEM, V200, b"{}", "image", 1)
    assert sampler.offer(cache, [command], {KEY: redis.exceptions.TimeoutError()}) == 0
    assert check_at(checker, clock, 1).final_checked == 0


def test_overlapping_runs_never_check_a_sample_twice(cache: redis.Redis, clock: Clock) -> None:
    sampler, checker = make(cache, clock, delays=(1,))
    other = Checker(cache, SamplingConfig(rate=1.0, delays_s=(1,)), clock=clock)
    sampler.add(cache, [Sample(f"{KEY}{i}", V200, 1) for i in range(1200)])
    clock.now += 1
    assert checker.run(max_samples=700).final_checked + other.run().final_checked == 1200


# -- zero false positives over generated schedules -------------------------------------


@pytest.fixture
def every_record_sampled(clock: Clock) -> Iterator[SamplingConfig]:
    config = SamplingConfig(rate=1.0, delays_s=(1, 3))
    sampling.configure(Sampler(config, clock=clock))
    yield config
    sampling.configure(None)


def race_mix(rng: random.Random) -> Mix:
    keys = tuple(rng.sample(range(len(KEY_POOL)), rng.randint(1, 3)))
    views = tuple((t, rng.choice(VIEWS)) for t in sorted(SCHEMAS))
    return Mix(keys, (rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 4), rng.randint(0, 2)),
               burst=rng.randint(1, 4), max_batch=rng.randint(1, 4),
               rewind_after_failure=rng.random() < 0.5, views=views)  # fmt: skip


def checked_world(cache: redis.Redis, clock: Clock, config: SamplingConfig, seed: int) -> Report:
    """One schedule, every record sampled, the checker run after every step: all it finds."""
    cache.flushall()
    rng = random.Random(seed)
    checker = Checker(cache, config, clock=clock)
    checker.arm()
    mix = race_mix(rng) if seed % 2 else None
    world = World(
        cache, Choices.seeded(seed), rng.choice(VIEWS), rng.choice(SEQUENCE_STARTS), Stats(), mix=mix
    )
    total = Report(config.delays_s)
    for _ in range(rng.randrange(10, 80)):
        world.tick()
        total.add(check_at(checker, clock, 1))
    world.drain()
    for _ in range(4):
        total.add(check_at(checker, clock, 1))
    checker.disarm()
    world.check_converged()
    return total


def test_no_false_positive_over_generated_schedules(
    cache: redis.Redis, clock: Clock, every_record_sampled: SamplingConfig
) -> None:
    checked = [0, 0]
    for seed in range(24):
        report = checked_world(cache, clock, every_record_sampled, seed)
        assert not report.findings, f"seed {seed}: {report.findings[:3]}"
        checked = [a + b for a, b in zip(checked, report.checked, strict=True)]
    # the runs did check samples at both delays, fills racing records included
    assert min(checked) > 150, checked


# -- warm racing writes --------------------------------------------------------------


class RacingTable:
    """``warm``'s table port over the model: writes and their delivery land around each read.

    Before the read (after the leases), or between the read and the fill - the
    race a fill must lose: its item is older than the record just applied.
    """

    def __init__(self, world: World, table: str, rng: random.Random) -> None:
        self.world, self.table, self.rng = world, table, rng

    def pages(self, segment: int, segments: int) -> Iterator[list[dict]]:
        # a Scan returns items that exist when it reads them
        keys = [k for t, k in self.world.keys if t == self.table and self.world.truth.get(t, k) is not None]
        yield keys[segment::segments]

    def read(self, keys: list[dict]) -> list[dict | None]:
        before = self.rng.random() < 0.5
        if before:
            self._race()
        items = [self.world.truth.get(self.table, key) for key in keys]
        if not before:
            self._race()
        return items

    def _race(self) -> None:
        for _ in range(self.rng.randint(1, 4)):
            self.world.write()
            self.world.deliver()


def test_warm_racing_writes_never_steps_a_key_back(cache: redis.Redis) -> None:
    from streamcache.ops.warm import Target, Warmer, WarmReport
    from streamcache.read.lookup import ReaderCache

    total = WarmReport()
    for seed in range(40):
        cache.flushall()
        rng = random.Random(seed)
        world = World(cache, Choices.seeded(seed), rng.choice(VIEWS), rng.choice(SEQUENCE_STARTS), Stats())
        for _ in range(rng.randrange(0, 30)):
            world.tick()
        if rng.random() < 0.5:
            cache.flushall()  # the cold cache warm is for
            world.forget_cache()
        for table, names in SCHEMAS.items():
            port = RacingTable(world, table, rng)
            warmer = Warmer(ReaderCache(cache), Target(table, names, TTL_S, TTL_S))
            for segment in range(2):
                for page in port.pages(segment, 2):
                    total.add(warmer.warm_page(page, port))
                    world.check_monotonic()
        world.drain()
        world.check_converged()
    # the fills raced writes both ways: some were rejected, some stored
    assert total.raced > 0 and total.filled > 0, total


def test_without_a_checker_the_sampler_rests_instead_of_asking_every_batch(
    cache: redis.Redis, clock: Clock
) -> None:
    sampler = Sampler(SamplingConfig(rate=1.0, delays_s=(1,)), clock=clock)
    assert sampler.add(cache, [Sample(KEY, V200, 1)]) == 0  # not armed: one round trip, then rest
    checker = Checker(cache, SamplingConfig(rate=1.0, delays_s=(1,)), clock=clock)
    checker.arm()
    assert sampler.add(cache, [Sample(KEY, V200, 1)]) == 0  # resting: not even asked
    clock.now += 61
    assert sampler.add(cache, [Sample(KEY, V300, 1)]) == 1
    assert check_at(checker, clock, 1).final_checked == 1
