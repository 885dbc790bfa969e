"""Consistency suite fixtures: a real redis-server, run statistics, and soak mode.

``--soak-seconds=N`` (``make soak SECONDS=N``) turns the bounded CI run into
a timed one: the seeded soak test runs schedules until N seconds have
passed, printing its seed. The default, 0, is the bounded CI mode.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from consistency import summary
from consistency.world import Stats
from streamcache.local.redis_server import RedisServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=0.0,
        help="run the consistency soak for this many seconds (0: bounded CI mode)",
    )


@pytest.fixture(scope="session")
def soak_seconds(request: pytest.FixtureRequest) -> float:
    # The option exists only when this directory was named on the command line.
    return float(request.config.getoption("--soak-seconds", default=0.0) or 0.0)


@pytest.fixture(scope="session")
def stats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stats]:
    collected = Stats()
    yield collected
    summary.write(collected, tmp_path_factory.getbasetemp())


@pytest.fixture
def cache(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    client.flushall()
    yield client
    client.close()
