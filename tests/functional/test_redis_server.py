"""The throwaway redis-server: it stops what it started, and the test session proves nothing leaked."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from streamcache.local.redis_server import RedisServer, ServerStillRunningError, running_redis, still_running

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]


def tracked(server: RedisServer) -> bool:
    assert server.process is not None
    return any(line.startswith(f"pid {server.process.pid}:") for line in still_running())


def test_a_started_server_is_tracked_until_stopped() -> None:
    with running_redis() as server:
        assert tracked(server)
        process = server.process
        assert process is not None
    assert process.poll() is not None  # killed and reaped
    assert not any(line.startswith(f"pid {process.pid}:") for line in still_running())


def test_starting_a_running_server_again_is_refused() -> None:
    # A second process could not bind the port; the old code then waited on the first
    # one's PING and lost track of it (an orphan once the first was "stopped").
    with running_redis() as server:
        first = server.process
        with pytest.raises(ServerStillRunningError, match=str(server.port)):
            server.start()
        assert server.process is first and tracked(server)


def test_a_server_that_cannot_bind_its_port_fails_instead_of_adopting_another() -> None:
    with running_redis() as server:
        squatter = RedisServer(port=server.port)
        try:
            with pytest.raises(RuntimeError, match="exited with status"):
                squatter.start()
            assert squatter.process is None
        finally:
            squatter.stop()
            shutil.rmtree(squatter.workdir, ignore_errors=True)


def test_the_session_fails_when_a_test_leaves_a_server_running(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{ROOT / 'tests'}")  # the inner run starts elsewhere
    pytester.makeconftest("from tests.conftest import no_process_left_behind  # noqa: F401\n")
    pytester.makepyfile(
        textwrap.dedent(
            """
            from streamcache.local.redis_server import RedisServer

            def test_forgets_to_stop():
                RedisServer().start()
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*processes started by the tests are still running*", "*redis-server*"])
