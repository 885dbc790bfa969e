"""Delivery schedules: every order in which Lambda may legally deliver one shard's records.

Lambda reads a shard in order. The only departures from "each record once,
in order" are re-deliveries, and they always re-send a contiguous run in
order: a retry from the checkpoint, a bisected half, the rest of a batch
after a partial failure, or a poller restarting from an older persisted
checkpoint (a duplicate). Records whose retries run out go to the failure
destination and are later redriven (the redrive invalidates their keys).

``Shard`` turns a stream of small integers (``Choices``) into such a
schedule, one ``Invocation`` at a time. Choice 0 is always the benign one
(deliver, succeed), so a property-based test that shrinks the integers
shrinks the schedule to the fewest departures that still fail; ``trace``
prints it. The same class drives the demo and the benchmarks with
``Choices.seeded``.

What the function does with an invocation is decided here too (which
records it got to apply before failing), because a real failure is exactly
that: some records applied, then an error or a partial batch response.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

OK, PARTIAL, ERROR, REWIND, REDRIVE = "ok", "partial", "error", "rewind", "redrive"


class Choices:
    """A source of decisions: ``pick(n)`` is in ``range(n)``; 0 once the source runs dry."""

    def __init__(self, values: Iterable[int]) -> None:
        self._values: Iterator[int] = iter(values)
        self.used = 0

    @classmethod
    def seeded(cls, seed: int) -> Choices:
        rng = random.Random(seed)
        return cls(rng.randrange(256) for _ in iter(int, 1))

    def pick(self, n: int) -> int:
        value = next(self._values, 0)
        self.used += 1
        return value % n if n > 1 else 0

    def pick_weighted(self, weights: Sequence[int]) -> int:
        """An index into ``weights``, each as likely as its weight (a 0 weight is never picked)."""
        value = self.pick(sum(weights))
        return next(i for i, edge in enumerate(itertools.accumulate(weights)) if value < edge)


@dataclass(frozen=True)
class Invocation:
    """One thing the event source mapping does.

    ``batch``: the record indexes delivered (in order). ``applied``: those the
    function gets to apply. ``outcome``: OK (success), PARTIAL (reports failure
    from ``batch[failed_at]`` on), ERROR (the invocation fails), REDRIVE (not an
    invocation: the operator redrives the failure destination, ``batch`` are
    the skipped records) or REWIND (a poller restarts from an older checkpoint).
    """

    outcome: str
    batch: tuple[int, ...] = ()
    applied: tuple[int, ...] = ()
    failed_at: int | None = None

    def describe(self) -> str:
        if self.outcome == REWIND:
            return f"rewind to record {self.batch[0] if self.batch else '-'}"
        if self.outcome == REDRIVE:
            return f"redrive {_span(self.batch)}"
        text = f"deliver {_span(self.batch)} apply {_span(self.applied)} -> {self.outcome}"
        return text + (f" at {self.batch[self.failed_at]}" if self.failed_at is not None else "")


def _span(indexes: tuple[int, ...]) -> str:
    if not indexes:
        return "[]"
    if indexes == tuple(range(indexes[0], indexes[-1] + 1)):
        return f"[{indexes[0]}..{indexes[-1]}]"
    return "[" + ",".join(map(str, indexes)) + "]"


@dataclass
class _Batch:
    indexes: tuple[int, ...]
    retries: int = 0


@dataclass
class Shard:
    """The event source mapping of one shard, with bisect, retries and a failure destination."""

    choices: Choices
    max_batch: int = 8
    max_retries: int = 2
    # Give a poller restart (rewind) an even chance right after a failed invocation: a
    # rewind over records a failing function half-applied is where duplicates bite.
    rewind_after_failure: bool = False
    checkpoint: int = 0  # index of the first record not yet checkpointed
    persisted: list[int] = field(default_factory=lambda: [0])  # every checkpoint reached
    pending: deque[_Batch] = field(default_factory=deque)  # bisected halves / retries, in order
    skipped: list[int] = field(default_factory=list)  # in the failure destination, not redriven
    trace: list[str] = field(default_factory=list)
    _current: _Batch = field(default_factory=lambda: _Batch(()))
    _just_failed: bool = False

    def next(self, available: int) -> Invocation | None:
        """The next invocation for a stream of ``available`` records; None when caught up."""
        if self._rewind_now():
            return self._rewind()
        action = self.choices.pick(16)
        if action == 14 and self.skipped:
            return self._redrive()
        if action == 15 and len(self.persisted) > 1:
            return self._rewind()
        batch = self._next_batch(available)
        if batch is None:
            return None
        return self._invocation(batch, action)

    def _rewind_now(self) -> bool:
        just_failed, self._just_failed = self._just_failed, False
        if not (self.rewind_after_failure and just_failed and len(self.persisted) > 1):
            return False
        return self.choices.pick(2) == 1

    def drain_redrives(self) -> Invocation | None:
        return self._redrive() if self.skipped else None

    def _next_batch(self, available: int) -> _Batch | None:
        if self.pending:
            return self.pending.popleft()
        if self.checkpoint >= available:
            return None
        size = 1 + self.choices.pick(self.max_batch)
        if self.choices.pick(2) == 0:
            size = self.max_batch  # half the time a full batch: fewer, larger deliveries
        end = min(available, self.checkpoint + size)
        return _Batch(tuple(range(self.checkpoint, end)))

    def _invocation(self, batch: _Batch, action: int) -> Invocation:
        self._current = batch
        if action < 10:
            return Invocation(OK, batch.indexes, batch.indexes)
        if action < 12:
            at = self.choices.pick(len(batch.indexes))
            return Invocation(PARTIAL, batch.indexes, batch.indexes[:at] + self._some(batch.indexes[at:]), at)
        return Invocation(ERROR, batch.indexes, self._some(batch.indexes))

    def _some(self, indexes: tuple[int, ...]) -> tuple[int, ...]:
        """The records a failing function got to apply: any subset, in order."""
        return tuple(i for i in indexes if self.choices.pick(2) == 1)

    def complete(self, inv: Invocation, first_failure: int | None = None, errored: bool = False) -> None:
        """Record the outcome, merged with what the real handler did.

        ``first_failure``: the batch position of the first record the handler
        reported; ``errored``: the handler raised (both count as failures too).
        """
        positions = [p for p in (inv.failed_at, first_failure) if p is not None]
        failed_at = min(positions) if positions else None
        note = " (handler raised)" if errored else ""
        note += f" (handler reported {first_failure})" if first_failure is not None else ""
        self.trace.append(inv.describe() + note)
        batch = self._current
        self._just_failed = inv.outcome == ERROR or errored or failed_at is not None
        if inv.outcome == ERROR or errored:
            self._failed(batch, bisect=self.choices.pick(2) == 0)
        elif failed_at is not None:
            self._done(batch.indexes[:failed_at])
            self._failed(_Batch(batch.indexes[failed_at:], batch.retries), bisect=False)
        else:
            self._done(batch.indexes)

    def _done(self, indexes: tuple[int, ...]) -> None:
        if indexes:
            self._advance(indexes[-1] + 1)

    def _advance(self, to: int) -> None:
        if to > self.checkpoint:
            self.checkpoint = to
            self.persisted.append(to)

    def _failed(self, batch: _Batch, bisect: bool) -> None:
        """Bisect (costs no retry; halves inherit the parent's), retry, or give up."""
        if bisect and len(batch.indexes) > 1:
            half = len(batch.indexes) // 2
            first, second = batch.indexes[:half], batch.indexes[half:]
            self.pending.extendleft([_Batch(second, batch.retries), _Batch(first, batch.retries)])
        elif batch.retries < self.max_retries:
            self.pending.appendleft(_Batch(batch.indexes, batch.retries + 1))
        else:
            self.trace.append(f"  {_span(batch.indexes)} -> failure destination")
            self.skipped.extend(batch.indexes)
            self._skip_past(batch.indexes[-1] + 1)

    def _skip_past(self, to: int) -> None:
        # A skipped batch's later sibling halves are still pending; the checkpoint moves
        # only once nothing before ``to`` is pending.
        if not any(b.indexes[0] < to for b in self.pending):
            self._advance(to)

    def _rewind(self) -> Invocation:
        """A new poller resumes from an older persisted checkpoint: later records come again."""
        to = self.persisted[self.choices.pick(len(self.persisted))]
        self.pending.clear()
        self.checkpoint = to
        self.trace.append(f"rewind to record {to}")
        return Invocation(REWIND, (to,))

    def _redrive(self) -> Invocation:
        indexes, self.skipped = tuple(self.skipped), []
        self.trace.append(f"redrive {_span(indexes)}")
        return Invocation(REDRIVE, indexes)
