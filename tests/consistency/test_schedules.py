"""CONTRACT section 5, promises 1-3, over generated delivery schedules (hypothesis).

Each example is a model table written at random (INSERT/MODIFY/REMOVE/TTL,
hyphenated and numeric keys, one stream view type), a schedule of everything
Lambda may do with the shard (batches of any size, partial failures, function
errors with bisect or retry, rewinds to an older checkpoint, records sent to
the failure destination and redriven), and readers - some of them racing a
write and its delivery between their DynamoDB read and their fill. The world
checks the invariants after every step; a failure shrinks to a minimal
schedule, printed step by step in the assertion message.

Two searches: ``worlds`` is broad (up to all nine keys, batches up to ten);
``race_worlds`` leans toward what exposes races (``Mix``): one to three keys,
bursts of writes to one key, small batches, reads between writes and their
delivery (fills newer than the stream), stream view types mixed per table,
rewinds right after failed invocations, and DynamoDB's clock skewed against
Redis's by up to FILL_CLOCK_MARGIN_MS. test_search.py proves the second
one finds the protocol's old bugs by itself.
"""

from __future__ import annotations

import random
import time

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consistency.world import FILL_MARGIN_MS, KEY_POOL, SCHEMAS, SEQUENCE_STARTS, Mix, Stats, World
from streamcache.local.model import VIEWS
from streamcache.local.schedule import Choices

CI_EXAMPLES = 150
RACE_EXAMPLES = 300

worlds = st.fixed_dictionaries(
    {
        "choices": st.lists(st.integers(0, 255), min_size=30, max_size=600),
        "ticks": st.integers(1, 80),
        "view": st.sampled_from(VIEWS),
        "start": st.sampled_from(SEQUENCE_STARTS),
        "gaps": st.lists(st.integers(1, 10**6), min_size=1, max_size=4),
    }
)

# The first is what a failing example shrinks to: full images, the stale-image case.
RACE_VIEWS = ("NEW_AND_OLD_IMAGES", "KEYS_ONLY", "NEW_IMAGE")
# FILL_CLOCK_MARGIN_MS and DynamoDB's clock skew against Redis's, drawn within the margin:
# a record stamped up to margin - 1 ms late (ms flooring takes the last one) never passes
# for one written after a fill. test_search.py shows the search failing beyond it.
MARGINS = (FILL_MARGIN_MS, 100)
within_margin = st.sampled_from(MARGINS).flatmap(lambda m: st.tuples(st.integers(-3 * m, m - 1), st.just(m)))


def race_worlds_with(clocks: st.SearchStrategy[tuple[int, int]]) -> st.SearchStrategy[dict]:
    """The race search, with (clock skew ms, fill margin ms) drawn from ``clocks``."""
    mixes = st.builds(
        lambda clock, **fields: Mix(clock_skew_ms=clock[0], fill_margin_ms=clock[1], **fields),
        clock=clocks,
        keys=st.lists(st.integers(0, len(KEY_POOL) - 1), min_size=1, max_size=3, unique=True).map(tuple),
        # write, deliver, read, raced read: reads land between writes and their delivery
        weights=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2)),
        burst=st.integers(1, 4),
        max_batch=st.integers(1, 4),
        rewind_after_failure=st.booleans(),
        views=st.fixed_dictionaries({t: st.sampled_from(RACE_VIEWS) for t in SCHEMAS}).map(
            lambda views: tuple(sorted(views.items()))
        ),
    )
    return st.fixed_dictionaries(
        {
            # Long enough that a run does not go dry (all-zero choices: writes only).
            "choices": st.lists(st.integers(0, 255), min_size=80, max_size=400),
            "ticks": st.integers(8, 40),
            "view": st.just(RACE_VIEWS[0]),
            "start": st.sampled_from(SEQUENCE_STARTS),
            "gaps": st.lists(st.integers(1, 10**6), min_size=1, max_size=4),
            "mix": mixes,
        }
    )


race_worlds = race_worlds_with(within_margin)
SEARCH = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def run_world(cache: redis.Redis, stats: Stats, spec: dict) -> World:
    cache.flushall()
    world = World(
        cache,
        Choices(spec["choices"]),
        spec["view"],
        spec["start"],
        stats,
        gaps=spec["gaps"],
        mix=spec.get("mix"),
    )
    for _ in range(spec["ticks"]):
        world.tick()
    world.drain()
    world.check_converged()
    stats.schedules += 1
    return world


@settings(SEARCH, max_examples=CI_EXAMPLES)
@given(spec=worlds)
def test_every_schedule_converges_without_regression(cache: redis.Redis, stats: Stats, spec: dict) -> None:
    run_world(cache, stats, spec)


@settings(SEARCH, max_examples=RACE_EXAMPLES)
@given(spec=race_worlds)
def test_racy_schedules_converge_without_regression(cache: redis.Redis, stats: Stats, spec: dict) -> None:
    run_world(cache, stats, spec)


def test_soak(cache: redis.Redis, stats: Stats, soak_seconds: float) -> None:
    """Seeded random schedules for ``--soak-seconds`` (a handful in CI mode)."""
    seed = random.SystemRandom().randrange(2**32) if soak_seconds else 20261125
    rng = random.Random(seed)
    deadline = time.monotonic() + soak_seconds
    runs = 0
    while runs < 10 or time.monotonic() < deadline:
        spec = {
            "choices": [rng.randrange(256) for _ in range(rng.randrange(50, 2000))],
            "ticks": rng.randrange(10, 400),
            "view": rng.choice(VIEWS),
            "start": rng.choice(SEQUENCE_STARTS),
            "gaps": [rng.randrange(1, 10**6) for _ in range(3)],
        }
        try:
            run_world(cache, stats, spec)
        except AssertionError as err:
            raise AssertionError(f"soak seed {seed}, run {runs}: {err}") from None
        runs += 1
    print(f"soak seed {seed}: {runs} schedules")
