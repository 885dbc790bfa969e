"""CONTRACT section 5, promises 1-3, over generated delivery schedules (hypothesis).

Each example is a model table written at random (INSERT/MODIFY/REMOVE/TTL,
hyphenated and numeric keys, one stream view type), a schedule of everything
Lambda may do with the shard (batches of any size, partial failures, function
errors with bisect or retry, rewinds to an older checkpoint, records sent to
the failure destination and redriven), and readers - some of them racing a
write and its delivery between their DynamoDB read and their fill. The world
checks the invariants after every step; a failure shrinks to a minimal
schedule, printed step by step in the assertion message.
"""

from __future__ import annotations

import random
import time

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consistency.world import SEQUENCE_STARTS, Stats, World
from streamcache.local.model import VIEWS
from streamcache.local.schedule import Choices

CI_EXAMPLES = 150

worlds = st.fixed_dictionaries(
    {
        "choices": st.lists(st.integers(0, 255), min_size=30, max_size=600),
        "ticks": st.integers(1, 80),
        "view": st.sampled_from(VIEWS),
        "start": st.sampled_from(SEQUENCE_STARTS),
        "gaps": st.lists(st.integers(1, 10**6), min_size=1, max_size=4),
    }
)


def run_world(cache: redis.Redis, stats: Stats, spec: dict) -> World:
    cache.flushall()
    world = World(cache, Choices(spec["choices"]), spec["view"], spec["start"], stats, gaps=spec["gaps"])
    for _ in range(spec["ticks"]):
        world.tick()
    world.drain()
    world.check_converged()
    stats.schedules += 1
    return world


@settings(
    max_examples=CI_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=worlds)
def test_every_schedule_converges_without_regression(cache: redis.Redis, stats: Stats, spec: dict) -> None:
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
