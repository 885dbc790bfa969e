"""The embedded AWS (moto) and a Redis for local runs, each saying what it is.

AWS: moto's ``ThreadedMotoServer`` on a free port gives a real HTTP endpoint
(``DYNAMODB_ENDPOINT_URL``) that boto3, the reader and the stream reader all
use; ``mode="in-process"`` uses ``mock_aws`` instead (no endpoint URL).

Redis, in this order: ``REDIS_URL`` if set; else a ``redis-server`` started on
a free port (ours, stopped afterwards); else fakeredis (with Lua) served
over TCP in a thread, so every component still talks to a ``redis://`` URL.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from streamcache.errors import ConfigError
from streamcache.local.redis_server import running_redis

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # botocore >= 1.40 would otherwise resolve account-based endpoints (PITFALLS: moto).
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}

REDIS_CHOICES = ("auto", "redis-server", "fakeredis")


@dataclass(frozen=True)
class EmbeddedAws:
    endpoint_url: str | None
    description: str


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore the previous values."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def embedded_aws(mode: str = "server") -> Iterator[EmbeddedAws]:
    """moto, with fake credentials in the environment for the block's duration."""
    with patched_environ(FAKE_AWS_ENV):
        if mode == "in-process":
            from moto import mock_aws

            with mock_aws():
                yield EmbeddedAws(None, "moto in-process (mock_aws)")
            return
        yield from _moto_server()


def _moto_server() -> Iterator[EmbeddedAws]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    _reset_moto(url)  # moto's backends are process-global: start from a clean account
    try:
        yield EmbeddedAws(url, f"moto server at {url}")
    finally:
        _reset_moto(url)
        server.stop()


def _reset_moto(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=5).close()


@dataclass(frozen=True)
class LocalRedis:
    url: str
    description: str


@contextmanager
def local_redis(choice: str = "auto", env: Mapping[str, str] | None = None) -> Iterator[LocalRedis]:
    """``REDIS_URL``, else our own ``redis-server``, else fakeredis; ``choice`` forces one of the last two."""
    env = os.environ if env is None else env
    if choice not in REDIS_CHOICES:
        raise ConfigError(f"redis choice {choice!r} must be one of {', '.join(REDIS_CHOICES)}")
    url = env.get("REDIS_URL", "")
    if choice == "auto" and url:
        yield LocalRedis(url, f"REDIS_URL ({safe_location(url)})")
    elif choice != "fakeredis" and shutil.which("redis-server"):
        with running_redis() as server:
            yield LocalRedis(server.url, f"redis-server started on port {server.port} (stopped at exit)")
    elif choice == "redis-server":
        raise ConfigError("redis-server is not installed: install it, set REDIS_URL, or use fakeredis")
    else:
        with _fakeredis() as fake_url:
            why = "as asked" if choice == "fakeredis" else "no redis-server found"
            yield LocalRedis(fake_url, f"fakeredis in-process at {fake_url} ({why})")


def safe_location(url: str) -> str:
    """``scheme://host:port`` of a Redis URL, never its password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"


@contextmanager
def _fakeredis() -> Iterator[str]:
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True)
    thread.start()
    url = f"redis://127.0.0.1:{server.server_address[1]}/0"
    _preload_scripts(url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def _preload_scripts(url: str) -> None:
    """Load the protocol's Lua scripts so EVALSHA never meets NOSCRIPT.

    fakeredis' TCP server drops the connection after an error reply inside a
    pipeline (seen with fakeredis 2.40), so the NOSCRIPT-then-load path that
    real Redis needs after a restart would fail here.
    """
    import redis

    from streamcache.protocol import SCRIPT_NAMES, lua_source

    client = redis.Redis.from_url(url)
    try:
        for name in SCRIPT_NAMES:
            client.script_load(lua_source(name))
    finally:
        client.close()
