"""What every measurement shares: our own redis-server, clients, the workload, a timer."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.workload import Workload, key_schema_json
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.settings import Settings

TTL_SECONDS = 3600


@dataclass
class Rig:
    redis_url: str
    port: int
    quick: bool
    workload: Workload = field(default_factory=Workload)

    def env(self) -> dict[str, str]:
        """The invalidator's environment (the configuration) pointing at our server."""
        return {
            "REDIS_URL": self.redis_url,
            "KEY_SCHEMA": key_schema_json(),
            "CACHE_TTL_SECONDS": str(TTL_SECONDS),
            "CACHE_KEY_PREFIX": "",
            "POWERTOOLS_SERVICE_NAME": "streamcache-invalidator",
            "POWERTOOLS_METRICS_NAMESPACE": "streamcache-bench",
        }

    def client(self) -> Any:
        """A client built exactly as the invalidator builds its own (hiredis, timeouts)."""
        return redis_client(Settings.from_env(self.env()), INVALIDATOR_TIMEOUTS)

    def flush(self) -> None:
        with redis.Redis.from_url(self.redis_url) as client:
            client.flushall()


def timed(call: Callable[[], object]) -> float:
    """Seconds one call takes, after a garbage collection (so earlier garbage is not billed)."""
    gc.collect()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send fd 1 to /dev/null: Powertools' logger holds the real stdout, so redirect_stdout is not enough."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def run_alone(
    prog: str,
    description: str | None,
    run: Callable[[Rig], Any],
    show: Callable[[Any], str],
    argv: list[str] | None = None,
) -> int:
    """``python -m bench.<section> [--quick]``: one section on its own redis-server."""
    import argparse

    from streamcache.local.redis_server import running_redis

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    with running_redis() as server:
        rig = Rig(server.url, server.port, quick=args.quick)
        with quiet_stdout():
            result = run(rig)
    print(show(result))
    return 0
