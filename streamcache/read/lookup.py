"""The reader's side of the cache protocol: get, lease, wait, fill (memcache leases, NSDI '13).

A read first does a plain ``GET`` (the hot path). On a miss (absent or "X")
it asks ``lease.lua`` for a short lease. Three outcomes:

- an answer ("I", "T", "F"): someone filled the key meanwhile;
- our own lease: read DynamoDB, then ``fill.lua`` stores the result only if
  the lease still stands (every invalidator write replaces leases, so a fill
  that raced a write is rejected and can never make the cache older);
- another reader's lease: wait briefly for its fill (stampede protection).

Waiting polls ``lease.lua`` rather than ``GET``: it answers like a GET, and if
the other reader's lease was replaced by an invalidation (or expired), the
waiter takes a fresh lease and becomes the filler instead of giving up.
Every script touches one key, so this works on a Redis cluster unchanged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamcache import entry
from streamcache.entry import Entry
from streamcache.protocol import Scripts

# A lease outlives one consistent GetItem comfortably; if its reader dies, the key
# is free again after this long.
LEASE_MS = 2000
# How long a reader waits for another reader's fill before reading DynamoDB itself
# (without filling). The sleeps between polls grow from POLL_FIRST_S to POLL_MAX_S.
WAIT_BUDGET_S = 0.15
POLL_FIRST_S = 0.002
POLL_MAX_S = 0.025


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted lease: the exact value ``fill.lua`` must still find at the key."""

    value: bytes


Claim = Entry | Lease | None  # an answer, our lease, or None: read without filling


def new_token() -> str:
    return os.urandom(8).hex()


class ReaderCache:
    """The reader's Redis calls for one client. Raises redis-py errors unchanged."""

    def __init__(
        self,
        client: Any,
        scripts: Scripts | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._scripts = scripts if scripts is not None else Scripts.register(client)
        self._sleep = sleep
        self._clock = clock

    def get(self, key: str) -> Entry | None:
        """The entry at ``key`` if it answers a read, else None (absent, X or L)."""
        raw = self._client.get(key)
        if raw is None:
            return None
        found = entry.decode(raw)
        return found if found.is_answer else None

    def lease(self, key: str, token: str) -> Entry | Lease:
        """Run ``lease.lua``: an answer entry, our ``Lease``, or another reader's lease entry."""
        raw = self._scripts.lease(keys=[key], args=[token, LEASE_MS])
        found = entry.decode(raw)
        if found.kind == entry.LEASE and found.payload == token.encode("ascii"):
            return Lease(raw)
        return found

    def claim(self, key: str) -> Claim:
        """GET, then lease, then wait: what the caller should do for ``key``."""
        hit = self.get(key)
        if hit is not None:
            return hit
        token = new_token()
        outcome = self.lease(key, token)
        deadline = self._clock() + WAIT_BUDGET_S
        delay = POLL_FIRST_S
        while isinstance(outcome, Entry) and outcome.kind == entry.LEASE:
            if self._clock() + delay > deadline:
                return None  # the other reader is slow: read DynamoDB, leave the fill to it
            self._sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)
            outcome = self.lease(key, token)
        return outcome if isinstance(outcome, Lease) or outcome.is_answer else None

    def fill(self, key: str, lease: Lease, payload: bytes, ttl_seconds: int) -> bool:
        """Store what was read under ``lease``; False when the lease was lost (a write raced it)."""
        return bool(self._scripts.fill(keys=[key], args=[lease.value, payload, ttl_seconds]))
