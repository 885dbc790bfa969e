"""``python -m streamcache check``: compare a sample of cached keys with consistent DynamoDB reads.

Keys are sampled with SCAN from a random cursor (single node) or across
every primary (cluster), so repeated runs look at different keys. A key is
consistent when it holds a miss (``X``, a lease, nothing) or an answer equal
to a strongly consistent ``GetItem`` (numbers by value, sets in any order).
A mismatch may be a record still in flight: mismatches are read again after
``settle_seconds``, and only those still wrong are reported. ``repair``
writes a versioned invalidation through apply.lua, one version above the
entry it found: a newer write already applied makes it a no-op, and a newer
record still in flight is applied over it as usual.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from redis.cluster import RedisCluster

from streamcache import entry
from streamcache.ops.keyspace import same_item
from streamcache.protocol import APPLIED, INVALIDATED, Scripts, apply_commands
from streamcache.records import Command
from streamcache.settings import ApplyOptions

Typed = dict[str, Any]
ReadTable = Callable[[str], "Typed | None"]  # cache key -> the item, strongly consistent
PIPELINE = 500


@dataclass
class CheckResult:
    checked: int = 0
    inconsistent: list[str] = field(default_factory=list)
    repaired: int = 0

    @property
    def consistent(self) -> int:
        return self.checked - len(self.inconsistent)


def sample_keys(client: Any, pattern: str, limit: int, rng: random.Random) -> list[str]:
    """Up to ``limit`` distinct keys matching ``pattern``, from a random starting cursor."""
    found: dict[str, None] = {}
    for key in _scan(client, pattern, rng):
        found[key] = None
        if len(found) >= limit:
            break
    return list(found)


def _scan(client: Any, pattern: str, rng: random.Random) -> Iterator[str]:
    if isinstance(client, RedisCluster):
        yield from (_text(k) for k in client.scan_iter(match=pattern, count=1000))
        return
    # A SCAN cursor is a position in the hash table: any value below its size is a valid start.
    start = rng.randrange(1 << max(1, int(client.dbsize()).bit_length()))
    for first in (start, 0):
        cursor = first
        while True:
            cursor, keys = client.scan(cursor=cursor, match=pattern, count=1000)
            yield from (_text(k) for k in keys)
            if cursor == 0:
                break


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


class Check:
    def __init__(
        self,
        client: Any,
        read_table: ReadTable,
        ttl_seconds: int,
        apply_options: ApplyOptions | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._read = read_table
        self._ttl = ttl_seconds
        self._apply_options = apply_options or {}
        self._sleep = sleep

    def run(self, keys: list[str], settle_seconds: float, repair: bool) -> CheckResult:
        result = CheckResult(checked=len(keys))
        suspects = self._mismatched(keys)
        if suspects and settle_seconds > 0:
            self._sleep(settle_seconds)
        still = self._mismatched(list(suspects)) if suspects else {}
        result.inconsistent = sorted(still)
        if repair and still:
            result.repaired = self._invalidate(still)
        return result

    def _mismatched(self, keys: list[str]) -> dict[str, entry.Entry]:
        """Keys whose entry answers reads differently from the table: key -> the entry."""
        wrong: dict[str, entry.Entry] = {}
        for start in range(0, len(keys), PIPELINE):
            chunk = keys[start : start + PIPELINE]
            pipe = self._client.pipeline(transaction=False)
            for key in chunk:
                pipe.get(key)
            for key, raw in zip(chunk, pipe.execute(), strict=True):
                held = entry.decode(raw) if raw is not None else None
                if held is not None and held.is_answer and not same_item(held.item(), self._read(key)):
                    wrong[key] = held
        return wrong

    def _invalidate(self, found: dict[str, entry.Entry]) -> int:
        commands = [
            Command(k, entry.INVALIDATED, _above(e.version), b"", "check repair") for k, e in found.items()
        ]
        script = Scripts.register(self._client).apply
        outcomes = apply_commands(self._client, script, commands, self._ttl, **self._apply_options)
        return sum(o in (APPLIED, INVALIDATED) for o in outcomes if not isinstance(o, Exception))


def _above(version: str) -> str:
    """The next version: the invalidation must be newer than the wrong entry, and no newer than needed."""
    return str(min(int(version) + 1, 10**entry.VERSION_DIGITS - 1)).zfill(entry.VERSION_DIGITS)
