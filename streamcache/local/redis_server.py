"""A throwaway ``redis-server`` on a free port, owned by whoever started it.

Used by ``make replay`` / ``make demo`` and by the tests. Never touches a
server it did not start: it picks a free port and stops its own process.

Every process started here is remembered until it is stopped:
``still_running()`` names those still alive (the test session fails on any),
and an exit handler kills them, so an interrupted demo or test run leaves no
orphan behind.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import redis

# Processes started by this Python process and not yet stopped, by pid.
_started: dict[int, subprocess.Popen[bytes]] = {}


def still_running() -> list[str]:
    """The processes this Python process started that are still alive (pid and command line)."""
    return [f"pid {pid}: {_command(p)}" for pid, p in _started.items() if p.poll() is None]


def _command(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    return " ".join(str(a) for a in args) if isinstance(args, list) else str(args)


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=5)
    _started.pop(process.pid, None)


@atexit.register
def stop_all() -> None:
    """Kill every process started here (an interrupted run's safety net)."""
    for process in list(_started.values()):
        _reap(process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerStillRunningError(RuntimeError):
    """``start()`` on a server whose process is alive: a second one could not bind its port."""


@dataclass
class RedisServer:
    """A ``redis-server`` child process; ``start()`` / ``stop()`` / ``restart()``."""

    port: int = field(default_factory=free_port)
    extra_args: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="streamcache-redis-")))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> Self:  # generous: CI machines get busy
        if self.process is not None and self.process.poll() is None:
            raise ServerStillRunningError(f"redis-server at {self.url} (pid {self.process.pid}) is running")
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.workdir), *self.extra_args]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _started[self.process.pid] = self.process
        self._wait_ready(timeout)
        return self

    def client(self, **options: Any) -> redis.Redis:
        """A client to this server alone (subclasses say how: TLS, ...)."""
        return redis.Redis(port=self.port, **options)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self.process
        with self.client(socket_connect_timeout=0.2) as client:
            while time.monotonic() < deadline and process is not None and process.poll() is None:
                try:
                    # PING: done loading; process_id: ours answering, not another server on the
                    # port (ours would then fail to bind and exit).
                    if client.ping() and client.info("server").get("process_id") == process.pid:
                        return
                    time.sleep(0.02)
                except redis.RedisError:
                    time.sleep(0.02)
        code = None if process is None else process.poll()
        self.stop()
        if code is not None:
            raise RuntimeError(f"redis-server at {self.url} exited with status {code} while starting")
        raise TimeoutError(f"redis-server at {self.url} did not answer within {timeout}s")

    def stop(self) -> None:
        """Kill the process and wait for it (idempotent)."""
        if self.process is not None:
            _reap(self.process)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def running_redis(extra_args: Sequence[str] = ()) -> Iterator[RedisServer]:
    server = RedisServer(extra_args=extra_args)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
