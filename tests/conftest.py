"""Shared fixtures: real redis-server processes we start ourselves, on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

# The consistency suite's figures, printed by whichever process prints (xdist controller too).
from consistency.summary import pytest_terminal_summary  # noqa: F401

from streamcache import aws
from streamcache.local.embedded import FAKE_AWS_ENV
from streamcache.local.redis_cluster import RedisClusterNodes, running_cluster
from streamcache.local.redis_server import RedisServer, running_redis, still_running, stop_all


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fail the run if a process the tests started outlives them (checked after every other
    session fixture has stopped its servers); the stragglers are killed either way.

    Only processes this session started are looked at: servers on the machine are not ours.
    """
    yield
    alive = still_running()
    stop_all()
    assert not alive, "processes started by the tests are still running:\n" + "\n".join(alive)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (ours: flushing it is fine)."""
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.script_flush()
    yield redis_server.url
    client.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for this test alone: tests that kill or restart it use this one."""
    with running_redis() as server:
        yield server


# --- Redis cluster (issue 8): one 3-master cluster per xdist worker, started on first use.


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    with running_cluster() as cluster:
        yield cluster


def flush_cluster(cluster: RedisClusterNodes) -> None:
    for node in cluster.nodes:
        client = redis.Redis(port=node.port)
        client.flushall()
        client.script_flush()
        client.close()


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterNodes) -> str:
    """The session cluster, emptied (data and scripts) for this test."""
    flush_cluster(redis_cluster)
    return redis_cluster.url


@dataclass(frozen=True)
class RedisTarget:
    """Where a test's Redis is: a single node or a cluster (REDIS_CLUSTER for the handlers)."""

    url: str
    cluster: bool

    @property
    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.url, "REDIS_CLUSTER": "true" if self.cluster else "false"}

    def client(self) -> Any:
        if self.cluster:
            from redis.cluster import RedisCluster

            return RedisCluster.from_url(self.url)
        return redis.Redis.from_url(self.url)


@pytest.fixture(params=["single", "cluster"])
def any_redis(request: pytest.FixtureRequest) -> RedisTarget:
    """The same test against a single redis-server and against the 3-master cluster (emptied)."""
    if request.param == "cluster":
        return RedisTarget(request.getfixturevalue("cluster_url"), cluster=True)
    return RedisTarget(request.getfixturevalue("redis_url"), cluster=False)


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region for moto; no boto3 client made outside the mock is reused."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    aws.client.cache_clear()
    yield
    aws.client.cache_clear()
