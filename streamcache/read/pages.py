"""The query cache's Redis side: read a page with its marker, fill a page under the marker seen.

Both calls are one single-slot script (``qread.lua``, ``qfill.lua``): a marker
and its pages share a hash slot, so this works on a cluster unchanged. Raises
redis-py errors unchanged; the caller falls back to DynamoDB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamcache.protocol import lua_source
from streamcache.read.near import NearCache

if TYPE_CHECKING:  # query imports boto3's condition builder: the reader's cold start skips it
    from streamcache.read.query import QueryPlan

SEPARATOR = b"|"


@dataclass(frozen=True, slots=True)
class Seen:
    """What qread.lua saw: the marker (None: none yet), the valid page's payload, Redis ms."""

    marker: bytes | None
    payload: bytes | None
    now_ms: int


class Pages:
    """``near``: keep valid pages in process memory too, dropped when their page or marker changes."""

    def __init__(self, client: Any, near: NearCache | None = None) -> None:
        self._read = client.register_script(lua_source("qread"))
        self._fill = client.register_script(lua_source("qfill"))
        self._near = near

    def read(self, plan: QueryPlan) -> Seen:
        near = self._near
        if near is None:
            return self._read_redis(plan)
        held = near.get(plan.result)
        if held is not None:
            tag, _, payload = held.partition(SEPARATOR)
            return Seen(tag, payload, 0)  # valid: a move of its marker would have dropped it
        ticket = near.begin(plan.result, group=plan.marker)
        try:
            seen = self._read_redis(plan)
        except BaseException:
            if ticket is not None:
                near.abandon(ticket)
            raise
        if ticket is not None:
            if seen.payload is None or seen.marker is None:
                near.abandon(ticket)
            else:
                near.store(ticket, seen.marker + SEPARATOR + seen.payload)
        return seen

    def _read_redis(self, plan: QueryPlan) -> Seen:
        marker, page, now = self._read(keys=[plan.marker, plan.result])
        return Seen(marker, _payload(page, marker), int(now))

    def fill(self, plan: QueryPlan, seen: Seen, payload: bytes, ttl_seconds: int, settle_ms: int) -> bool:
        """Store ``payload`` unless a record moved the partition since ``seen`` (or it has not settled)."""
        args = [seen.marker or b"", payload, ttl_seconds, settle_ms if plan.global_index else 0]
        args += [seen.now_ms, os.urandom(8).hex()]
        return bool(self._fill(keys=[plan.marker, plan.result], args=args))


def _payload(page: bytes | None, marker: bytes | None) -> bytes | None:
    """The page's payload when it was filled under ``marker``, else None (a miss)."""
    if page is None or marker is None:
        return None
    tag, sep, payload = page.partition(SEPARATOR)
    return payload if sep and tag == marker else None
