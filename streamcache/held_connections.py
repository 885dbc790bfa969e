"""Where a Redis call's connection comes from: redis-py's pool each time, or kept between calls.

Borrowing from redis-py's pool and giving back costs ~20 us a call (its
lock, observability counters, event dispatch and a readiness poll): a sixth
of a one-record invalidator batch, a sixth of a cache hit. ``Held`` keeps one
connection per pool for an owner that never calls from two threads at once
(the invalidator: one invocation at a time); ``PerThread`` keeps one per
pool per thread (the reader and the library, which may be shared by threads).

What the pool does for a borrowed connection is still done here:

- a failed call closes its connection and gives it back to the pool;
- a connection the server dropped while idle is replaced: ``PerThread``
  polls it before use as the pool does, ``Held`` leaves it to the
  connection's retry policy (the invalidator's retries twice);
- redis-py's health check (a PING after ``health_check_interval``) still runs;
- after a fork, the child never touches the parent's sockets;
- a pool a cluster client dropped (a new slot map) takes its connection with
  it, and an owner that goes away (a rebuilt runtime, an ended thread) gives
  its connections back.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError, ResponseError

T = TypeVar("T")


class Connections:
    """Borrowed from the pool and given back each time; safe for any number of threads."""

    def take(self, pool: Any) -> Any:
        return pool.get_connection()

    def give(self, pool: Any, conn: Any, broken: bool = False) -> None:
        """Give the connection back (closed first if a reply may still be unread on it)."""
        if broken:
            conn.disconnect()
        pool.release(conn)


BORROWED = Connections()


class Held(Connections):
    """One connection per pool kept between calls, for an owner that never calls from two threads.

    ``check_ready``: poll a kept connection before use, as the pool does, and
    reconnect it when the server closed it (for callers without retries).
    """

    def __init__(self, check_ready: bool = False) -> None:
        self._check_ready = check_ready
        self._pid = os.getpid()
        self._kept: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        weakref.finalize(self, _give_back, self._kept)

    def take(self, pool: Any) -> Any:
        if self._pid != os.getpid():  # a forked child: the parent's sockets are not ours
            self._kept = weakref.WeakKeyDictionary()
            self._pid = os.getpid()
        conn = self._kept.pop(pool, None)
        if conn is None:
            return pool.get_connection()
        if self._check_ready:
            _ready(conn)
        return conn

    def give(self, pool: Any, conn: Any, broken: bool = False) -> None:
        if broken:
            super().give(pool, conn, broken=True)
        else:
            self._kept[pool] = conn


class PerThread(Connections):
    """A ``Held`` (with the readiness poll) per thread; a thread that ends gives its connections back."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _held(self) -> Held:
        held: Held | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = Held(check_ready=True)
        return held

    def take(self, pool: Any) -> Any:
        return self._held().take(pool)

    def give(self, pool: Any, conn: Any, broken: bool = False) -> None:
        self._held().give(pool, conn, broken)


def command(pool: Any, connections: Connections, *args: Any) -> Any:
    """One command and its reply (redis-py's raw reply: no response callback), like ``execute_command``.

    Errors are redis-py's: an error reply raises its ``ResponseError`` (the
    connection stays usable); a lost or timed-out connection is retried per
    the connection's retry policy, then raises and is closed.
    """
    return on_connection(pool, connections, lambda conn: _round_trip(conn, args))


def on_connection(pool: Any, connections: Connections, call: Callable[[Any], T]) -> T:
    """``call(conn)`` on a connection from ``connections``, with the connection's retry policy.

    An error reply (``ResponseError``) leaves the connection usable; anything
    else that escapes closes it before it is given back.
    """
    conn = connections.take(pool)
    try:
        reply = conn.retry.call_with_retry(lambda: call(conn), lambda _error: conn.disconnect())
    except ResponseError:
        connections.give(pool, conn)
        raise
    except BaseException:
        connections.give(pool, conn, broken=True)
        raise
    connections.give(pool, conn)
    return reply


def _round_trip(conn: Any, args: tuple[Any, ...]) -> Any:
    conn.send_command(*args)  # packed by redis-py's packer (hiredis's when installed)
    return conn.read_response()


def _ready(conn: Any) -> None:
    """What the pool checks before lending a connection: nothing unread, not closed by the server."""
    try:
        if conn.can_read():
            conn.disconnect()  # data or EOF waiting: the next send reconnects
    except (RedisError, OSError):
        conn.disconnect()


def _give_back(kept: weakref.WeakKeyDictionary[Any, Any]) -> None:
    for pool, conn in list(kept.items()):
        pool.release(conn)
    kept.clear()
