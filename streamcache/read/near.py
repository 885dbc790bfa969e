"""The near cache: entries recently read from Redis, kept in process memory.

Coherence comes from Redis itself: one ``Tracker`` per node (a RESP3
connection in ``CLIENT TRACKING BCAST`` mode) delivers an invalidation for
every write to a cached key, and ordered ``PING``s on the same connection
confirm that every invalidation sent before them has been received.

The promise: a value served from memory is never older than what Redis held
``max_staleness_s`` before (plus one network hop). An entry is served only
while every node's newest confirmation was sent at most ``max_staleness_s``
ago. Confirmations are sent ahead (at half the bound) by the reads themselves
and their replies read later, so steady traffic pays no round trip; after a
pause (a frozen Lambda environment) the first read pays one. A connection
that errors, times out or is replaced empties the near cache; one that goes
silent stops confirming, so nothing is served on its word.

The race between a read and an invalidation (the value read from Redis may
already be invalidated by the time it is stored) is closed with tickets:
``begin`` before the GET, ``store`` after it, and a store is refused when an
invalidation for the key (or a flush, or a reconnect) was processed in between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from streamcache.read.tracking import Tracker, TrackingUnsupported
from streamcache.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_ITEMS = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_STALENESS_S = 0.1
# After a lost connection, how long reads go to Redis before tracking is tried again.
DEFAULT_RETRY_AFTER_S = 1.0
# Bookkeeping per entry beyond its key and value (dict slot, OrderedDict links, objects).
ENTRY_OVERHEAD_BYTES = 200


class Nodes(Protocol):
    """Where to track: the node names of the deployment, and a connection to each."""

    def names(self) -> tuple[str, ...]: ...

    def connect(self, name: str) -> AbstractConnection: ...


@dataclass(frozen=True, slots=True)
class Ticket:
    key: str
    generation: int
    epoch: int
    group: str | None = None  # a key whose invalidation drops this entry too (a query page's marker)

    @property
    def watched(self) -> tuple[str, ...]:
        """The keys whose invalidation during the read refuses the store."""
        return (self.key,) if self.group is None else (self.key, self.group)


@dataclass(slots=True)
class NearCounters:
    """Counts since the near cache was made (never reset: the reader publishes differences)."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    stores_refused: int = 0  # an invalidation raced the read
    invalidations: int = 0
    resets: int = 0  # the near cache was emptied: lost connection, flush, topology change
    round_trips: int = 0  # reads that waited for a confirmation


class NearCache:
    def __init__(
        self,
        nodes: Nodes,
        *,
        prefix: str = "",
        max_items: int = DEFAULT_ITEMS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_staleness_s: float = DEFAULT_MAX_STALENESS_S,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nodes = nodes
        self._prefix = prefix
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._max_s = max_staleness_s
        self._ahead_s = max_staleness_s / 2
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._trackers: dict[str, Tracker] = {}
        self._retry_at = float("-inf")
        self._disabled = False
        self._generation = 0
        self._epoch = 0  # counts invalidation messages processed
        self._flushed_epoch = -1
        self._pending: dict[str, int] = {}  # key -> reads in flight between begin and store
        self._dropped: dict[str, int] = {}  # pending key -> epoch of its last invalidation
        self._members: dict[str, set[str]] = {}  # group key -> entries it invalidates too
        self._group_of: dict[str, str] = {}  # entry -> its group key
        self.counters = NearCounters()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return not self._disabled

    def get(self, key: str) -> bytes | None:
        """The stored value for ``key`` when it may be served, else None (read Redis)."""
        with self._lock:
            if key not in self._entries or not self._trusted():
                self.counters.misses += 1
                return None
            raw = self._entries.get(key)  # the confirmation may have invalidated it
            if raw is None:
                self.counters.misses += 1
                return None
            self._entries.move_to_end(key)
            self.counters.hits += 1
            return raw

    def begin(self, key: str, group: str | None = None) -> Ticket | None:
        """Call before reading ``key`` from Redis; None when the result must not be stored.

        ``group``: another key whose change also makes the value stale (a query
        page is valid only while its partition's marker is unchanged).
        """
        with self._lock:
            if not self._started():
                return None
            try:  # invalidations already here (of our own lease and fill, say) must not refuse the store
                for tracker in self._trackers.values():
                    tracker.pump()
            except RedisError as err:
                self._reset(f"tracking connection failed ({type(err).__name__})")
                return None
            ticket = Ticket(key, self._generation, self._epoch, group)
            for watched in ticket.watched:
                self._pending[watched] = self._pending.get(watched, 0) + 1
            return ticket

    def store(self, ticket: Ticket, value: bytes) -> bool:
        """Keep ``value`` (read after ``begin``) unless an invalidation raced it."""
        with self._lock:
            raced = self._raced(ticket)
            self._release(ticket)
            if raced:
                self.counters.stores_refused += 1
                return False
            size = len(ticket.key) + len(value) + ENTRY_OVERHEAD_BYTES
            if size > self._max_bytes // 4:
                return False  # one value must not push out a quarter of the cache
            self._put(ticket.key, value, size)
            if ticket.group is not None:
                self._members.setdefault(ticket.group, set()).add(ticket.key)
                self._group_of[ticket.key] = ticket.group
            self.counters.stores += 1
            return True

    def abandon(self, ticket: Ticket) -> None:
        """The read after ``begin`` failed or is not to be kept."""
        with self._lock:
            self._release(ticket)

    def confirm_now(self) -> bool:
        """One round trip to every node: afterwards, every write Redis executed before now is reflected.

        For a caller that must not see a value older than a write it knows of
        (read-your-writes across processes). False when tracking is down (the
        near cache is then empty and every read goes to Redis anyway).
        """
        with self._lock:
            if not self._started():
                return False
            try:
                for tracker in self._trackers.values():
                    tracker.confirm()
            except RedisError as err:
                self._reset(f"tracking connection failed ({type(err).__name__})")
                return False
            return True

    def close(self) -> None:
        with self._lock:
            self._close_trackers()
            self._clear()

    # --- freshness

    def _trusted(self) -> bool:
        """True when every node confirmed recently enough; sends or waits for confirmations."""
        if not self._started():
            return False
        try:
            for tracker in self._trackers.values():
                tracker.pump()
            now = self._clock()
            if now - self._oldest_confirmation() > self._ahead_s:
                self._confirm_ahead(now)
            if now - self._oldest_confirmation() <= self._max_s:
                return True
            self.counters.round_trips += 1
            for tracker in self._trackers.values():
                if now - tracker.confirmed_at > self._max_s:
                    tracker.confirm()
            return self._clock() - self._oldest_confirmation() <= self._max_s
        except RedisError as err:
            self._reset(f"tracking connection failed ({type(err).__name__})")
            return False

    def _confirm_ahead(self, now: float) -> None:
        if tuple(self._trackers) != self._nodes.names():
            raise _TopologyChanged("the cluster's primaries changed")
        for tracker in self._trackers.values():
            if now - tracker.confirmed_at > self._ahead_s:
                tracker.ping_ahead()

    def _oldest_confirmation(self) -> float:
        return min(tracker.confirmed_at for tracker in self._trackers.values())

    def _started(self) -> bool:
        if self._trackers:
            return True
        if self._disabled or self._clock() < self._retry_at:
            return False
        return self._start()

    def _start(self) -> bool:
        self._generation += 1
        try:
            names = self._nodes.names()
            self._trackers = {name: self._tracker(name) for name in names}
            for tracker in self._trackers.values():
                tracker.start()
        except TrackingUnsupported as err:
            self._disabled = True
            self._close_trackers()
            log.warning("Near cache off: the Redis server does not support client tracking (%s)", err)
            return False
        except RedisError as err:
            self._reset(f"cannot start tracking ({type(err).__name__})")
            return False
        return bool(self._trackers)

    def _tracker(self, name: str) -> Tracker:
        return Tracker(lambda: self._nodes.connect(name), self._prefix, self._invalidated, self._clock)

    def _reset(self, why: str) -> None:
        log.warning("Near cache emptied: %s", why)
        self.counters.resets += 1
        self._close_trackers()
        self._clear()
        self._retry_at = self._clock() + self._retry_after_s

    def _close_trackers(self) -> None:
        for tracker in self._trackers.values():
            tracker.close()
        self._trackers = {}
        self._generation += 1  # tickets taken before this can no longer store

    # --- invalidations and entries

    def _invalidated(self, keys: list[bytes] | None) -> None:
        self._epoch += 1
        if keys is None:  # FLUSHALL / FLUSHDB
            self._flushed_epoch = self._epoch
            self.counters.invalidations += len(self._entries)
            self._clear()
            return
        for raw in keys:
            key = raw.decode("utf-8", "surrogateescape")
            self.counters.invalidations += 1
            self._drop(key)
            for member in self._members.pop(key, ()):
                self._drop(member)
            if key in self._pending:
                self._dropped[key] = self._epoch

    def _raced(self, ticket: Ticket) -> bool:
        return (
            ticket.generation != self._generation
            or self._flushed_epoch > ticket.epoch
            or any(self._dropped.get(key, -1) > ticket.epoch for key in ticket.watched)
        )

    def _release(self, ticket: Ticket) -> None:
        for key in ticket.watched:
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)
                self._dropped.pop(key, None)

    def _put(self, key: str, value: bytes, size: int) -> None:
        self._drop(key)
        self._entries[key] = value
        self._bytes += size
        while len(self._entries) > self._max_items or self._bytes > self._max_bytes:
            oldest, _ = next(iter(self._entries.items()))
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        value = self._entries.pop(key, None)
        if value is not None:
            self._bytes -= len(key) + len(value) + ENTRY_OVERHEAD_BYTES
        group = self._group_of.pop(key, None)
        if group is not None:
            members = self._members.get(group)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._members[group]

    def _clear(self) -> None:
        self._entries.clear()
        self._members.clear()
        self._group_of.clear()
        self._bytes = 0


class _TopologyChanged(RedisError):
    """A node was added or replaced: what was tracked may not cover every key."""


class SingleNode:
    """The one node behind a ``redis.Redis`` client: tracked with the pool's own options."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def names(self) -> tuple[str, ...]:
        return ("node",)

    def connect(self, name: str) -> AbstractConnection:
        return tracking_connection(self._client.connection_pool)


class ClusterNodes:
    """Every primary of a ``RedisCluster``: each one's writes are tracked on its own connection."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(node.name for node in self._client.get_primaries()))

    def connect(self, name: str) -> AbstractConnection:
        node = self._client.get_node(node_name=name)
        if node is None or node.redis_connection is None:
            raise RedisConnectionError(f"cluster node {name} is gone")
        return tracking_connection(node.redis_connection.connection_pool)


def nodes_of(client: Any, cluster: bool) -> Nodes:
    return ClusterNodes(client) if cluster else SingleNode(client)


def tracking_connection(pool: Any) -> AbstractConnection:
    """A new connection with the pool's TLS, AUTH and timeouts, speaking RESP3.

    No health check: its PING would read another command's reply on a
    connection whose replies are read later, by hand.
    """
    options = {**pool.connection_kwargs, "protocol": 3, "health_check_interval": 0}
    conn: AbstractConnection = pool.connection_class(**options)
    return conn


def near_cache_for(client: Any, settings: Settings) -> NearCache | None:
    """The near cache ``settings`` ask for over ``client``'s nodes, or None when it is off."""
    if settings.near_cache_items == 0:
        return None
    return NearCache(
        nodes_of(client, settings.redis_cluster),
        prefix=settings.key_prefix,
        max_items=settings.near_cache_items,
        max_bytes=settings.near_cache_max_bytes,
        max_staleness_s=settings.near_cache_max_staleness_ms / 1000.0,
    )
