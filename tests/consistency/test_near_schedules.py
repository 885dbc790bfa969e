"""Randomized schedules with near-cache readers, under faults: the staleness bound holds.

Several readers in one process, each with its own client and near cache
(``NEAR_CACHE_MAX_STALENESS_MS`` = ``BOUND_S``), read keys the real invalidator
keeps writing through a real redis-server. Faults land between steps, at a
point the schedule chooses: the tracking connections killed (``CLIENT KILL``),
Redis paused (``SIGSTOP``), Redis killed and restarted empty (data lost),
``FLUSHALL``, and the readers' connections gone silent (a proxy that stops
forwarding, while writes go on). Each fault is checked to have happened before it is counted.

The invariant, for every value a reader is served from memory at time t: it
was what Redis held at some moment of [t - BOUND_S - HOP_S, t]. ``HOP_S`` is
the "one network hop" of the promise, widened for a loaded 2-core CI machine.
Every write's interval in Redis is known from the test's side: from the
moment its call began to the moment the next write's call (or a data loss)
returned.
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from functional.tcp_proxy import SilentProxy, silent_proxy
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from invalidator.processor import Invalidator
from streamcache import entry
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.local import events
from streamcache.local.redis_server import running_redis
from streamcache.read.lookup import ReaderCache
from streamcache.read.near import NearCache, SingleNode
from streamcache.schema import KeySchemas
from streamcache.settings import Settings

BOUND_S = 0.1
HOP_S = 0.15
KEYS = tuple(range(4))
READERS = 3
FAULTS = ("client-kill", "sigstop", "data-lost", "flushall", "silent")


@dataclass
class Span:
    version: str | None  # None: nothing (lost or flushed)
    began: float  # the write's call began: it may be in Redis from here
    ended: float = float("inf")  # the next write's call (or the loss) returned: gone by here


@dataclass
class Truth:
    spans: dict[int, list[Span]] = field(default_factory=lambda: {k: [Span(None, 0.0)] for k in KEYS})

    def written(self, key: int, version: str | None, began: float, returned: float) -> None:
        self.spans[key][-1].ended = returned
        self.spans[key].append(Span(version, began))

    def held_between(self, key: int, version: str, start: float, end: float) -> bool:
        return any(s.version == version and s.began <= end and s.ended >= start for s in self.spans[key])


@dataclass
class Reader:
    client: redis.Redis
    near: NearCache
    lookups: ReaderCache


@dataclass
class Run:
    server: Any
    proxy: SilentProxy
    rng: random.Random
    invalidator: Invalidator
    readers: list[Reader]
    truth: Truth = field(default_factory=Truth)
    sequence: int = events.FIRST_SEQUENCE
    served_from_memory: int = 0
    checks: int = 0
    faults: dict[str, int] = field(default_factory=dict)

    def write(self) -> None:
        key = self.rng.choice(KEYS)
        self.sequence += 100
        keys = {"pk": {"S": f"k{key}"}}
        record = events.record(
            "items", "MODIFY", keys, self.sequence, new={**keys, "v": {"N": str(self.sequence)}}
        )
        began = time.monotonic()
        try:
            result = self.invalidator.process(events.event([record]))
        except RedisError:
            return
        if result.response == {"batchItemFailures": []}:
            self.truth.written(key, entry.pad_version(str(self.sequence)), began, time.monotonic())

    def read(self) -> None:
        reader = self.rng.choice(self.readers)
        key = self.rng.choice(KEYS)
        hits_before = reader.near.counters.hits
        lease_first = self.rng.random() < 0.5  # a claim that runs lease.lua first keeps its answer too
        try:
            if lease_first:
                reader.lookups.miss_share = 1.0
                claim = reader.lookups.claim(f"items-k{key}")
                found = claim if isinstance(claim, entry.Entry) else None  # our lease: expires unfilled
            else:
                found = reader.lookups.get(f"items-k{key}")
        except RedisError:
            return
        served_at = time.monotonic()
        if found is None or reader.near.counters.hits == hits_before:
            return  # from Redis itself: the near cache promised nothing here
        self.served_from_memory += 1
        self.checks += 1
        assert self.truth.held_between(key, found.version, served_at - BOUND_S - HOP_S, served_at), (
            f"key {key} served version {found.version} from memory at {served_at:.3f}, "
            f"not held by Redis within the bound: {self.truth.spans[key]}"
        )

    def fault(self, kind: str) -> None:
        getattr(self, "_" + kind.replace("-", "_"))()
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def _silent(self) -> None:
        """The readers' connections go silent (a NAT dropping the flow): no error, no invalidations."""
        self.proxy.go_silent()
        try:
            deadline = time.monotonic() + 2 * BOUND_S + HOP_S
            while time.monotonic() < deadline:
                self.write()  # lands in Redis; no reader hears of it
                self.read()  # from memory at most until the bound, then nothing
                time.sleep(0.01)
        finally:
            self.proxy.resume()

    def _client_kill(self) -> None:
        with redis.Redis(port=self.server.port) as admin:
            killed = admin.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1, "no connection was killed"

    def _sigstop(self) -> None:
        pid = self.server.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            with redis.Redis(port=self.server.port, socket_timeout=0.05) as probe, pytest.raises(RedisError):
                probe.ping()  # the pause is real: Redis answers nobody
            time.sleep(0.25)
            for _ in range(3):
                self.read()  # reads during the pause: time out or answer from memory within the bound
        finally:
            os.kill(pid, signal.SIGCONT)

    def _data_lost(self) -> None:
        before = _run_id(self.server.port)
        self.server.restart()
        assert _run_id(self.server.port) != before, "redis-server was not restarted"
        self._all_gone()

    def _flushall(self) -> None:
        with redis.Redis(port=self.server.port) as admin:
            admin.flushall()
            assert admin.dbsize() == 0
        self._all_gone()

    def _all_gone(self) -> None:
        now = time.monotonic()
        for key in KEYS:
            self.truth.written(key, None, now, now)


def _run_id(port: int) -> str:
    with redis.Redis(port=port) as admin:
        return str(admin.info("server")["run_id"])


def run_schedule(seed: int, steps: int = 160) -> Run:
    """Random writes, reads and pauses; each fault once, at a step fixed in advance."""
    rng = random.Random(seed)
    fault_at = dict(zip(rng.sample(range(20, steps - 20), len(FAULTS)), FAULTS, strict=True))
    with running_redis() as server, silent_proxy(server.port) as proxy:
        settings = Settings.from_env({"REDIS_URL": server.url, "REDIS_TIMEOUT_MS": "200"})
        invalidator = Invalidator(
            settings, redis_client(settings, INVALIDATOR_TIMEOUTS), KeySchemas({"items": ("pk",)}, None)
        )
        readers = []
        for _ in range(READERS):
            client = redis.Redis(
                port=proxy.port, socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
            )  # as the reader's own client: no retries, a short timeout
            near = NearCache(SingleNode(client), max_staleness_s=BOUND_S, retry_after_s=0.05)
            readers.append(Reader(client, near, ReaderCache(client, near=near)))
        run = Run(server, proxy, rng, invalidator, readers)
        for step in range(steps):
            if step in fault_at:
                run.fault(fault_at[step])
            action = rng.choices((run.write, run.read, _pause), weights=(4, 10, 2))[0]
            action() if action is not _pause else _pause(rng)
        for reader in readers:
            reader.near.close()
            reader.client.close()
    return run


def _pause(rng: random.Random) -> None:
    time.sleep(rng.uniform(0, 0.06))


@pytest.mark.parametrize("seed", range(4))
def test_near_cache_readers_never_serve_beyond_the_bound(seed: int) -> None:
    run = run_schedule(seed)
    assert run.served_from_memory > 5  # the near cache really served
    assert run.faults == dict.fromkeys(FAULTS, 1)
    assert sum(r.near.counters.resets for r in run.readers) >= READERS  # the faults reached every reader
