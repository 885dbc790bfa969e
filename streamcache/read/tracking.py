"""One tracking connection to one Redis node: invalidation pushes and ordered confirmations.

The connection speaks RESP3 and turns on ``CLIENT TRACKING ... BCAST``: Redis
then pushes an ``invalidate`` message on it for every modified key under the
prefix, whoever wrote it, and a ``None`` key list for ``FLUSHALL``/``FLUSHDB``.
Broadcast mode needs no per-read bookkeeping on the server and covers keys a
slot migration moves onto this node.

Confirmations: Redis writes a client's replies and pushes in the order it
produces them, so once the reply to a ``PING`` has been read, every
invalidation for a write the node executed before that ``PING`` has been read
(and handed to ``on_invalidate``) too. ``confirmed_at`` is the clock reading
taken when that ``PING`` was *sent*: what the near cache holds reflects every
write this node executed before then. A connection that dies silently stops
answering, so ``confirmed_at`` stops advancing and the near cache stops
trusting it: nothing is served on the word of a connection that says nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from streamcache.errors import StreamCacheError

Invalidate = Callable[[list[bytes] | None], None]

_PUSHED = object()  # what the push handler returns: "that was a push, not a reply"


class TrackingUnsupported(StreamCacheError):
    """The server refused ``CLIENT TRACKING`` (a proxy or a service without it)."""


class Tracker:
    """Owns one connection; not thread-safe (the near cache holds its lock around every call)."""

    def __init__(
        self,
        connect: Callable[[], AbstractConnection],
        prefix: str,
        on_invalidate: Invalidate,
        clock: Callable[[], float],
    ) -> None:
        self._connect = connect
        self._prefix = prefix
        self._on_invalidate = on_invalidate
        self._clock = clock
        self._conn: AbstractConnection | None = None
        self._pings: deque[float] = deque()  # send times of PINGs not yet answered, oldest first
        self.confirmed_at = float("-inf")

    def start(self) -> None:
        """Connect and turn tracking on; raises redis errors, or ``TrackingUnsupported``."""
        conn = self._connect()
        try:
            conn.connect()  # HELLO 3 first: a server without RESP3 refuses here
        except ResponseError as err:
            conn.disconnect()
            raise TrackingUnsupported(f"RESP3 refused: {err}") from err
        parser: Any = conn._parser
        parser.set_invalidation_push_handler(self._pushed)
        parser.set_pubsub_push_handler(_ignored)  # any other push must not read as a PING's reply
        args: list[Any] = ["CLIENT", "TRACKING", "ON", "BCAST"]
        if self._prefix:
            args += ["PREFIX", self._prefix]
        started_at = self._clock()
        try:
            conn.send_command(*args)
            conn.read_response()
        except ResponseError as err:
            conn.disconnect()
            raise TrackingUnsupported(f"CLIENT TRACKING refused: {err}") from err
        except BaseException:
            conn.disconnect()
            raise
        self._conn = conn
        # Tracking is on from here: nothing older than its start is in the cache.
        self.confirmed_at = started_at

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
        self._conn = None
        self._pings.clear()
        self.confirmed_at = float("-inf")

    def ping_ahead(self) -> None:
        """Send a PING unless one is already on its way (its reply is read later)."""
        if not self._pings:
            self._live().send_command("PING")
            self._pings.append(self._clock())

    def pump(self) -> None:
        """Read whatever has arrived, without waiting."""
        conn = self._live()
        while conn.can_read(timeout=0):
            self._read_one(conn)

    def confirm(self) -> None:
        """One round trip: send a PING now and read until it is answered.

        A fresh PING even when one is on its way: that one may have been sent
        long ago (before a freeze), and its answer would confirm only that old
        moment. Blocks up to the connection's socket timeout; a silent
        connection raises redis' ``TimeoutError`` here.
        """
        conn = self._live()
        conn.send_command("PING")
        self._pings.append(self._clock())
        while self._pings:
            self._read_one(conn)

    def _read_one(self, conn: AbstractConnection) -> None:
        reply = conn.read_response(push_request=True)
        if reply is _PUSHED:
            return
        if not self._pings:
            raise ResponseError(f"unexpected reply on the tracking connection: {reply!r}")
        self.confirmed_at = self._pings.popleft()

    def _pushed(self, message: list[Any]) -> object:
        keys = message[1] if len(message) > 1 else None
        self._on_invalidate(keys)
        return _PUSHED

    def _live(self) -> AbstractConnection:
        if self._conn is None:
            raise RedisConnectionError("tracking connection is not started")
        return self._conn


def _ignored(message: Any) -> object:
    return _PUSHED
