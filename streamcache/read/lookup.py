"""The reader's side of the cache protocol: get, lease, wait, fill (memcache leases, NSDI '13).

A read first does a plain ``GET`` (the hot path). On a miss (absent or "X")
it asks ``lease.lua`` for a short lease. Three outcomes:

- an answer ("I", "T", "F"): someone filled the key meanwhile;
- our own lease: read DynamoDB, then ``fill.lua`` stores the result only if
  the lease still stands (every invalidator write replaces leases, so a fill
  that raced a write is rejected and can never make the cache older);
- another reader's lease: wait briefly for its fill (stampede protection).

A single-key claim that reaches Redis (the near cache, when there is one, did
not answer) starts with ``lease.lua`` instead of the ``GET`` while most recent
such claims missed: the script answers a hit as the ``GET`` would (and the near
cache keeps that answer the same way), and a miss then takes two round trips
(lease, fill) instead of three. While most claims hit, the ``GET`` stays first:
Redis runs it about ten times faster than a script. Both ways give the same
claim for the same key.

Waiting polls ``lease.lua`` rather than ``GET``: it answers like a GET, and if
the other reader's lease was replaced by an invalidation (or expired), the
waiter takes a fresh lease and becomes the filler instead of giving up.
Every script touches one key, so this works on a Redis cluster unchanged.

Batches (``get_many``, ``lease_many``, ``fill_many``) run the same steps for
many keys in one round trip each: ``MGET`` on one node, a pipeline of ``GET``
on a cluster (decided once, when the client is given), and pipelines of the
single-key scripts, which a cluster pipeline routes key by key.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.backoff import AbstractBackoff, ExponentialBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import AskError, MovedError, NoScriptError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError

from streamcache import entry
from streamcache.connection import DeferredClient
from streamcache.entry import Entry
from streamcache.held_connections import PerThread, command
from streamcache.protocol import Scripts
from streamcache.read.near import NearCache

# A lease outlives one consistent GetItem comfortably; if its reader dies, the key
# is free again after this long.
LEASE_MS = 2000
# How long a reader waits for another reader's fill before reading DynamoDB itself
# (without filling). The sleeps between polls grow from POLL_FIRST_S to POLL_MAX_S.
WAIT_BUDGET_S = 0.15
POLL_FIRST_S = 0.002
POLL_MAX_S = 0.025
# Single-key claims that reach Redis lease first once more than LEASE_FIRST_ABOVE of the
# recent ones missed: a moving average where each claim weighs MISS_WEIGHT.
LEASE_FIRST_ABOVE = 0.5
MISS_WEIGHT = 0.125
# Keys per MGET (or per pipeline of GETs on a cluster): one round trip for a whole batch
# of reads, while one reply stays a few MB at most.
GET_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted lease: the exact value ``fill.lua`` must still find at the key."""

    value: bytes


Claim = Entry | Lease | None  # an answer, our lease, or None: read without filling
Found = TypeVar("Found", Entry, bytes)  # an answer as an Entry, or as entry.answer's payload


def new_token() -> str:
    return os.urandom(8).hex()


class ReaderCache:
    """The reader's Redis calls for one client. Raises redis-py errors unchanged.

    ``wait_budget_s`` and ``backoff`` shape the wait for another reader's fill;
    ``cluster`` (default: asked of the client once, here) picks MGET or GETs.
    """

    def __init__(
        self,
        client: Any,
        scripts: Scripts | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        *,
        wait_budget_s: float = WAIT_BUDGET_S,
        backoff: AbstractBackoff | None = None,
        cluster: bool | None = None,
        near: NearCache | None = None,
    ) -> None:
        self._client = client
        self._near = near
        self._scripts = scripts if scripts is not None else Scripts.register(client)
        self._sleep = sleep
        self._clock = clock
        self._wait_budget_s = wait_budget_s
        self._backoff = backoff or ExponentialBackoff(cap=POLL_MAX_S, base=POLL_FIRST_S)
        self._cluster = isinstance(client, RedisCluster | DeferredClient) if cluster is None else cluster
        # One node: single commands on a connection this thread keeps (no pool round per call).
        self._pool = None if self._cluster else client.connection_pool
        self._connections = PerThread()
        # The recent share of single-key claims that missed (0 to 1). Updated without a lock:
        # a lost update only delays the switch between GET first and lease first.
        self.miss_share = 0.0

    def get(self, key: str) -> Entry | None:
        """The entry at ``key`` if it answers a read, else None (absent, X or L).

        With a near cache: from process memory when it may serve the key, else
        from Redis, kept there when it is an answer.
        """
        near = self._near
        if near is not None:
            raw = near.get(key)
            if raw is not None:
                return entry.decode(raw)
        return self._get_from_redis(key)

    def _get_from_redis(self, key: str) -> Entry | None:
        """GET, and (with a near cache) keep an answer in memory."""
        near = self._near
        if near is None:
            return _answer(self._command("GET", key))
        return self._through_near(near, [key], lambda: [self._command("GET", key)], _answer)[0]

    def lease(self, key: str, token: str) -> Entry | Lease:
        """Run ``lease.lua``: an answer entry, our ``Lease``, or another reader's lease entry."""
        return self._leases([key], token)[0]

    def claim(self, key: str) -> Claim:
        """GET, then lease, then wait: what the caller should do for ``key``.

        While most recent claims that reached Redis missed: lease (which answers
        a hit too), then wait, skipping the GET. A near cache answers first
        either way, and keeps what Redis answered.
        """
        near = self._near
        if near is not None:
            raw = near.get(key)
            if raw is not None:
                return entry.decode(raw)
        if self.miss_share > LEASE_FIRST_ABOVE:
            claim = self.lease_many([key])[0] if near is None else self._lease_first_near(near, key)
            missed = not isinstance(claim, Entry)
        else:
            hit = self._get_from_redis(key)  # the near cache was asked above
            missed = hit is None
            claim = self.lease_many([key])[0] if hit is None else hit
        self.miss_share += (missed - self.miss_share) * MISS_WEIGHT
        return claim

    def _lease_first_near(self, near: NearCache, key: str) -> Claim:
        """``lease.lua`` between the near cache's ``begin`` and ``store``, as ``get`` does with its GET.

        An answer is kept in memory exactly like a GET's; a lease of another
        reader is waited out by ``lease_many`` (nothing to keep).
        """
        token = new_token()
        raws: list[bytes] = []

        def lease() -> list[bytes]:
            raws.append(self._evalsha(self._scripts.lease, key, (token, LEASE_MS)))
            return raws

        answer = self._through_near(near, [key], lease, _answer)[0]
        if answer is not None:
            return answer
        outcome = _outcome(raws[0], token.encode("ascii"))
        if isinstance(outcome, Lease):
            return outcome
        return self.lease_many([key])[0]  # another reader's lease: wait for its fill

    def fill(self, key: str, lease: Lease, payload: bytes, ttl_seconds: int) -> bool:
        """Store what was read under ``lease``; False when the lease was lost (a write raced it)."""
        return bool(self._evalsha(self._scripts.fill, key, (lease.value, payload, ttl_seconds)))

    # -- many keys, one round trip per step ------------------------------------

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """What ``get`` answers for every key, in order, as ``entry.answer`` gives it: the item's
        JSON, ``b""`` for "not found", None for a miss (no ``Entry`` per key: a batch of hits
        is mostly this). MGET chunks (one node) or GETs (cluster), one pipeline.
        """
        near = self._near
        if near is None:
            return [None if raw is None else entry.answer(raw) for raw in self._get_raw(keys)]
        held = [near.get(key) for key in keys]
        answers = [None if raw is None else entry.answer(raw) for raw in held]
        missing = [i for i, raw in enumerate(held) if raw is None]
        if missing:
            wanted = [keys[i] for i in missing]
            fetched = self._through_near(near, wanted, lambda: self._get_raw(wanted), _payload)
            for i, found in zip(missing, fetched, strict=True):
                answers[i] = found
        return answers

    def _through_near(
        self,
        near: NearCache,
        keys: Sequence[str],
        read: Callable[[], Sequence[bytes | None]],
        answer: Callable[[bytes | None], Found | None],
    ) -> list[Found | None]:
        """Read ``keys`` from Redis between the near cache's ``begin`` and ``store``.

        ``answer`` reads a value (None: not an answer, so the near cache does not keep it).
        """
        tickets = [near.begin(key) for key in keys]
        try:
            raws = read()
        except BaseException:
            for ticket in tickets:
                if ticket is not None:
                    near.abandon(ticket)
            raise
        answers = [answer(raw) for raw in raws]
        for ticket, raw, found in zip(tickets, raws, answers, strict=True):
            if ticket is None:
                continue
            if found is None or raw is None:
                near.abandon(ticket)
            else:
                near.store(ticket, raw)
        return answers

    def _get_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        if not self._cluster and len(keys) <= GET_CHUNK:  # one MGET needs no pipeline
            return list(self._command("MGET", *keys))
        pipe = self._client.pipeline(transaction=False)
        for start in range(0, len(keys), GET_CHUNK):
            chunk = keys[start : start + GET_CHUNK]
            if self._cluster:  # keys of a cluster MGET must share a slot: one GET each
                for key in chunk:
                    pipe.get(key)
            else:
                pipe.mget(chunk)
        replies = pipe.execute()
        return replies if self._cluster else [raw for reply in replies for raw in reply]

    def lease_many(self, keys: Sequence[str]) -> list[Claim]:
        """Lease every key (absent or invalidated), waiting out other readers' leases; ``claim``'s answers."""
        token = new_token()  # one per call: a lease is the key's value, so keys never share one
        outcomes = self._leases(keys, token)
        deadline = self._clock() + self._wait_budget_s
        for attempt in itertools.count():
            waiting = [i for i, o in enumerate(outcomes) if isinstance(o, Entry) and o.kind == entry.LEASE]
            delay = self._backoff.compute(attempt)
            if not waiting or self._clock() + delay > deadline:
                break  # slow other readers: read DynamoDB for those keys, leave the fill to them
            self._sleep(delay)
            for i, outcome in zip(waiting, self._leases([keys[i] for i in waiting], token), strict=True):
                outcomes[i] = outcome
        return [o if isinstance(o, Lease) or o.is_answer else None for o in outcomes]

    def fill_many(self, fills: Sequence[tuple[str, Lease, bytes, int]]) -> list[bool]:
        """``fill`` for each ``(key, lease, payload, ttl_seconds)``, pipelined."""
        calls = [(key, (lease.value, payload, ttl)) for key, lease, payload, ttl in fills]
        return [bool(r) for r in self._run_script(self._scripts.fill, calls)]

    def _leases(self, keys: Sequence[str], token: str) -> list[Entry | Lease]:
        raws = self._run_script(self._scripts.lease, [(key, (token, LEASE_MS)) for key in keys])
        mine = token.encode("ascii")
        return [_outcome(raw, mine) for raw in raws]

    def _run_script(self, script: Script, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """One pipeline of EVALSHA; a NOSCRIPT (first use, restart) reruns that call through ``Script``."""
        if len(calls) == 1:  # no pipeline for one key: the single-key read stays one plain call
            return [self._evalsha(script, *calls[0])]
        if self._cluster:
            replies = self._pipelines_by_node(script, calls)
        else:
            replies = _evalsha_pipeline(self._client.pipeline(transaction=False), script, calls)
        for i, reply in enumerate(replies):
            # NOSCRIPT (first use, restart) or MOVED/ASK (a slot moved since the map was read):
            # once more through Script, which loads the script and follows redirects itself.
            if isinstance(reply, NoScriptError | MovedError | AskError):
                key, args = calls[i]
                replies[i] = script(keys=[key], args=list(args))
            elif isinstance(reply, Exception):
                raise reply
        return replies

    def _evalsha(self, script: Script, key: str, args: tuple[Any, ...]) -> Any:
        """One EVALSHA, as ``Script`` runs it, minus its per-call wrapping; NOSCRIPT through ``Script``."""
        try:
            return self._command("EVALSHA", script.sha, 1, key, *args)
        except NoScriptError:  # first use on this server, or a restart: Script loads it and runs it
            return script(keys=[key], args=list(args))

    def _command(self, *args: Any) -> Any:
        """One command, as ``execute_command`` runs it (a cluster routes it by key)."""
        if self._pool is None:
            return self._client.execute_command(*args)
        return command(self._pool, self._connections, *args)

    def _pipelines_by_node(self, script: Script, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """One plain pipeline per owning master, keys routed by their slot here.

        Not redis-py's cluster pipeline: it asks the server ``COMMAND GETKEYS``
        for every EVALSHA it routes, one hidden round trip per key.
        """
        try:
            groups: dict[str, list[int]] = {}
            nodes: dict[str, Any] = {}
            for i, (key, _args) in enumerate(calls):
                node = self._client.get_node_from_key(key)
                nodes[node.name] = node
                groups.setdefault(node.name, []).append(i)
        except RedisClusterException as err:  # slot map incomplete: Redis is unreachable for this read
            raise RedisConnectionError(f"cluster slot map incomplete ({type(err).__name__})") from err
        replies: list[Any] = [None] * len(calls)
        for name, indexes in groups.items():
            pipe = self._client.get_redis_connection(nodes[name]).pipeline(transaction=False)
            answered = _evalsha_pipeline(pipe, script, [calls[i] for i in indexes])
            for i, reply in zip(indexes, answered, strict=True):
                replies[i] = reply
        return replies


def _outcome(raw: bytes, mine: bytes) -> Entry | Lease:
    """What ``lease.lua`` answered: our ``Lease`` (its token is ``mine``), or the entry found."""
    found = entry.decode(raw)
    return Lease(raw) if found.kind == entry.LEASE and found.payload == mine else found


def _evalsha_pipeline(pipe: Any, script: Script, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    for key, args in calls:
        pipe.execute_command("EVALSHA", script.sha, 1, key, *args)
    return list(pipe.execute(raise_on_error=False))


def _payload(raw: bytes | None) -> bytes | None:
    return None if raw is None else entry.answer(raw)


def _answer(raw: bytes | None) -> Entry | None:
    if raw is None:
        return None
    found = entry.decode(raw)
    return found if found.is_answer else None
