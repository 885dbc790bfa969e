"""Is a sampled key consistent with its record? Pure: the raw Redis value in, a verdict out.

A sample says: record ``version``, created at ``created_ms``, was handed to
the invalidator for ``key``. Some seconds later the key is consistent when it
holds

- that version or a newer one (``I``, ``T``, ``X``, ``L`` or ``F`` entries all
  carry one; ``L`` and ``F`` inherit the version they replaced);
- an invalidation or a lease (``X``, ``L``: a miss, readers go to DynamoDB), or
  nothing at all (expired, evicted, flushed);
- a reader's fill stamped at or after the record's creation (its lease-checked
  read came after the write, e.g. a refill after Redis lost the key).

Anything else is older than the record and still answers reads: an ``I`` or
``T`` of an older version (the record's write was lost: a failover, a bug), or
a fill of an older version stamped before the record's creation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from streamcache import entry
from streamcache.ops.sampling import Sample

_MISSES = (entry.INVALIDATED, entry.LEASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    consistent: bool
    held: str  # what the key held: kind and version (and fill stamp), never the payload


def judge(sample: Sample, raw: bytes | None) -> Verdict:
    if raw is None:
        return Verdict(True, "nothing")
    held = entry.decode(raw)
    described = describe(held)
    if held.kind in _MISSES or held.version >= sample.version:
        return Verdict(True, described)
    if held.kind == entry.FILL and held.fill_ms is not None and held.fill_ms >= sample.created_ms > 0:
        return Verdict(True, described)
    return Verdict(False, described)


def describe(held: entry.Entry) -> str:
    """``I@<version>``, ``F@<version>/<fill_ms>``...: enough to debug, no item contents."""
    text = f"{held.kind.decode('ascii')}@{held.version.lstrip('0') or '0'}"
    return text if held.fill_ms is None else f"{text}/fill_ms={held.fill_ms}"


def nines(checked: int, inconsistent: int) -> float:
    """-log10 of the inconsistent fraction; with none found, log10(checked), a lower bound."""
    if checked <= 0:
        return 0.0
    return 0.0 - math.log10(inconsistent / checked) if inconsistent else math.log10(checked)  # never -0.0


def nines_text(checked: int, inconsistent: int) -> str:
    """``2.7`` or ``>= 3.0`` (no inconsistency among 1,000 checks says at least three nines)."""
    if checked <= 0:
        return "n/a (nothing checked)"
    value = nines(checked, inconsistent)
    return f"{value:.1f}" if inconsistent else f">= {value:.1f}"
