"""The consistency world: a model table, its stream, the real invalidator and readers, one Redis.

``World`` runs writes, deliveries (from a ``Shard`` schedule), redrives and
reads against a real redis-server, and checks the CONTRACT section 5
invariants as it goes:

- monotonic: after every step, each key shows a state at least as new as
  any state it showed before (a miss shows none);
- reads: no answer is older than the newest state whose record was applied
  before the read began;
- converged (``check_converged``, after draining): each key holds nothing or
  the item's latest state.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from invalidator.processor import Invalidator
from streamcache.circuit import CircuitBreaker
from streamcache.local import model
from streamcache.local.schedule import ERROR, REDRIVE, REWIND, Choices, Invocation, Shard
from streamcache.protocol import Scripts, apply_commands
from streamcache.read.cacheaside import CacheAside, Expiry, Result
from streamcache.read.lookup import ReaderCache
from streamcache.records import invalidation_for
from streamcache.schema import KeySchemas
from streamcache.settings import Settings

# Hyphens and numbers: naive "-".join would make t-1/"a" and t/"1"-"a" one key,
# and "a-b"/"c" the same as "a"/"b-c".
SCHEMAS = {"t": ("pk", "sk"), "t-1": ("id",), "n": ("num",)}
KEY_POOL: list[tuple[str, dict[str, Any]]] = [
    ("t", {"pk": {"S": "a-b"}, "sk": {"S": "c"}}),
    ("t", {"pk": {"S": "a"}, "sk": {"S": "b-c"}}),
    ("t", {"pk": {"S": "1"}, "sk": {"S": "a"}}),
    ("t-1", {"id": {"S": "a"}}),
    ("t-1", {"id": {"S": "%2D"}}),
    ("t", {"pk": {"S": "%2D"}, "sk": {"S": "x"}}),
    ("n", {"num": {"N": "12345678901234567890123456789012345678"}}),
    ("n", {"num": {"N": "1.5"}}),
    ("n", {"num": {"N": "-0.000000000000000000000000000000000001"}}),
]
# Spellings DynamoDB treats as the same number as a key in KEY_POOL.
RESPELL = {
    "1.5": "1.50",
    "12345678901234567890123456789012345678": "1.2345678901234567890123456789012345678E37",
}

# Sequence numbers start where digit counts change: 21 -> 22 digits, 39 -> 40.
SEQUENCE_STARTS = (10**21 - 40, 1100000000017454423009, 10**39 - 40)
TTL_S = 600
# FILL_CLOCK_MARGIN_MS here: records are created with the writes' wall time, on the same
# clock as Redis TIME, so a small margin (ms flooring) makes the fill-mode exit frequent.
FILL_MARGIN_MS = 2


@dataclass(frozen=True)
class Mix:
    """What a world's schedule leans toward (the property search draws it; see test_schedules).

    ``keys``: KEY_POOL indexes in play; ``weights``: of the tick actions write,
    deliver, read, raced read; ``burst``: up to this many writes to one key per
    write step; ``max_batch``: the event source mapping's batch size;
    ``rewind_after_failure``: see ``Shard``; ``views``: stream view type per table
    (tables not named use the world's view); ``clock_skew_ms``: DynamoDB's clock ahead
    of Redis's (see ``model.Truth``); ``fill_margin_ms``: the invalidator's
    FILL_CLOCK_MARGIN_MS.
    """

    keys: tuple[int, ...] = tuple(range(len(KEY_POOL)))
    weights: tuple[int, int, int, int] = (3, 3, 1, 1)
    burst: int = 1
    max_batch: int = 8
    rewind_after_failure: bool = False
    views: tuple[tuple[str, str], ...] = ()
    clock_skew_ms: float = 0.0
    fill_margin_ms: int = FILL_MARGIN_MS


@dataclass
class Stats:
    schedules: int = 0
    writes: int = 0
    invocations: int = 0
    records_delivered: int = 0
    rewinds: int = 0
    redrives: int = 0
    errors: int = 0
    partials: int = 0
    reads: int = 0
    hits: int = 0  # reads answered from the cache
    get_items: int = 0  # reads of the table (reader GetItem calls)
    raced_reads: int = 0
    fills_rejected: int = 0
    checks: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    staleness_ms: list[float] = field(default_factory=list)
    staleness_steps: list[int] = field(default_factory=list)

    def fault(self, name: str) -> None:
        self.faults[name] = self.faults.get(name, 0) + 1


class ModelTable:
    """``streamcache.read.dynamodb.Table`` over the model, with a hook that runs after each read returns.

    The hook belongs to the thread that set it: free-running reader threads
    (test_concurrent_readers) share this table and must not run the schedule's
    race from their own thread, concurrently with the schedule.
    """

    def __init__(self, truth: model.Truth) -> None:
        self.truth = truth
        self._local = threading.local()
        self.fail: Callable[[], None] | None = None  # raises to emulate DynamoDB errors
        self.calls = 0  # GetItem calls (racy under free-running threads: a figure, not a check)

    @property
    def after_read(self) -> Callable[[], None] | None:
        hook: Callable[[], None] | None = getattr(self._local, "hook", None)
        return hook

    @after_read.setter
    def after_read(self, hook: Callable[[], None] | None) -> None:
        self._local.hook = hook

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        if self.fail is not None:
            self.fail()
        self.calls += 1
        item = self.truth.get(table, key)
        hook, self.after_read = self.after_read, None
        if hook is not None:
            hook()  # the forced race: writes and their delivery land between read and fill
        return item


def sequence_source(start: int, gaps: list[int]) -> Iterator[int]:
    return model.sequences(start, itertools.cycle(gaps or [1]))


class World:
    def __init__(  # noqa: PLR0917 - tests build worlds positionally
        self,
        client: redis.Redis,
        choices: Choices,
        view: str,
        sequence_start: int,
        stats: Stats,
        reader_client: redis.Redis | None = None,
        gaps: list[int] | None = None,
        mix: Mix | None = None,
    ) -> None:
        """Without ``mix``, batch size and key count come from ``choices`` (seeded runs)."""
        self.client = client
        self.choices = choices
        self.stats = stats
        self.mix = mix or Mix()
        sequences = sequence_source(sequence_start, gaps or [1, 7, 100])
        self.truth = model.Truth(
            SCHEMAS, sequences, view, table_views=dict(self.mix.views), clock_skew_ms=self.mix.clock_skew_ms
        )
        self.fill_margin_ms = self.mix.fill_margin_ms
        settings = Settings(
            redis_url="redis://unused",
            key_schema=SCHEMAS,
            cache_ttl_seconds=TTL_S,
            fill_clock_margin_ms=self.fill_margin_ms,
        )
        self.invalidator = Invalidator(settings, client, KeySchemas(SCHEMAS, None))
        self.scripts = Scripts.register(client)
        max_batch = self.mix.max_batch if mix else 1 + choices.pick(10)
        self.shard = Shard(choices, max_batch=max_batch, rewind_after_failure=self.mix.rewind_after_failure)
        self.table = ModelTable(self.truth)
        rc = reader_client if reader_client is not None else client
        self.reader = CacheAside(ReaderCache(rc), self.table, CircuitBreaker(3, 0.05), Expiry(TTL_S, TTL_S))
        self.observed: dict[str, int] = {}  # per key: newest state the cache has shown
        self.applied_floor: dict[str, int] = {}  # per key: newest state whose record was applied
        self.applied: set[int] = set()  # record indexes the invalidator confirmed
        self.pending: dict[str, list[tuple[int, float, int]]] = {}  # (state, written at, step)
        self.steps = 0
        self.log: list[str] = []
        # Few keys make collisions of writes, deliveries and reads on one key likely.
        pool = [KEY_POOL[i] for i in self.mix.keys]
        self.keys = pool if mix else pool[: 1 + choices.pick(len(pool))]
        self.checking = True  # off while a fault makes Redis unreadable to the checker
        # What the code under test saw go wrong (the fault tests assert their fault was felt):
        self.handler_failures = 0  # invocations the invalidator reported records of, or raised
        self.read_fallbacks = 0  # reads that met a Redis error or an open breaker
        self.read_errors = 0  # reads that raised (a DynamoDB error reaches the caller)
        # Hooks run between schedule steps: ``at_step[n]`` runs just before step n.
        self.at_step: dict[int, Callable[[], None]] = {}
        self._unwritten = 0

    def pick_key(self) -> tuple[str, dict[str, Any]]:
        return self.keys[self.choices.pick(len(self.keys))]

    # -- actions -------------------------------------------------------------

    def write(self) -> None:
        """One write, or with ``Mix.burst`` a few to one key (records the stream has not delivered)."""
        table, key = self.pick_key()
        count = 1 + self.choices.pick(self.mix.burst) if self.mix.burst > 1 else 1
        for _ in range(count):
            self._write_one(table, key)

    def _write_one(self, table: str, key: dict[str, Any]) -> None:
        op = model.OPERATIONS[self.choices.pick(len(model.OPERATIONS))]
        if self.choices.pick(4) == 3:
            key = {n: {t: RESPELL.get(v, v)} for n, tv in key.items() for t, v in tv.items()}
        record = self.truth.write(table, key, op)
        if record is None:
            return
        self.stats.writes += 1
        ck, state = self.truth.record_states[-1]
        self.pending.setdefault(ck, []).append((state, time.perf_counter(), self.steps))
        self.log.append(f"write #{len(self.truth.records) - 1} {op} {ck} -> state {state}")

    def deliver(self) -> bool:
        """One event source mapping step; False when the shard is caught up."""
        inv = self.shard.next(len(self.truth.records))
        if inv is None:
            return False
        self.run(inv)
        return True

    def run(self, inv: Invocation) -> None:
        self.log.append(inv.describe())
        if inv.outcome == REWIND:
            self.stats.rewinds += 1
        elif inv.outcome == REDRIVE:
            self.redrive(inv.batch)
        else:
            self.invoke(inv)

    def invoke(self, inv: Invocation) -> None:
        self.stats.invocations += 1
        self.stats.records_delivered += len(inv.applied)
        self.stats.errors += inv.outcome == ERROR
        self.stats.partials += inv.failed_at is not None
        first, errored = self._apply(inv.applied)
        position = None if first is None else inv.batch.index(inv.applied[first])
        self.shard.complete(inv, position, errored)

    def _apply(self, indexes: tuple[int, ...]) -> tuple[int | None, bool]:
        """Run the real invalidator on these records: (first reported position, raised)."""
        if not indexes:
            return None, False
        records = [self.truth.records[i] for i in indexes]
        try:
            result = self.invalidator.process({"Records": records})
        except Exception as err:  # an invocation error: Lambda retries / bisects
            self.log.append(f"  handler raised {type(err).__name__}")
            self.handler_failures += 1
            return 0, True
        failed = {f["itemIdentifier"] for f in result.response["batchItemFailures"]}
        first = next((p for p, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] in failed), None)
        self.handler_failures += first is not None
        applied = indexes if first is None else indexes[:first]
        self.applied.update(applied)
        for i in applied:
            ck, state = self.truth.record_states[i]
            self.applied_floor[ck] = max(self.applied_floor.get(ck, 0), state)
        return first, False

    def redrive(self, indexes: tuple[int, ...]) -> None:
        """What the redrive tool does: invalidate each skipped record's key at its version."""
        self.stats.redrives += 1
        commands = []
        for i in indexes:
            ck, _ = self.truth.record_states[i]
            commands.append(invalidation_for(self.truth.records[i], ck))
        outcomes = apply_commands(
            self.client, self.scripts.apply, commands, TTL_S, fill_margin_ms=self.fill_margin_ms
        )
        failed = [c for c, o in zip(indexes, outcomes, strict=True) if isinstance(o, Exception)]
        self.shard.skipped.extend(failed)  # not confirmed: redriven again later

    def read(self, race: bool = False, target: tuple[str, dict[str, Any]] | None = None) -> Result | None:
        """One reader lookup (of ``target``, else a key the schedule picks); with ``race``,
        steps run between its DynamoDB read and its fill."""
        table, key = target or self.pick_key()
        h = self.truth.history(table, key)
        floor = self.applied_floor.get(h.cache_key, 0)
        if race:
            self.stats.raced_reads += 1
            self.table.after_read = lambda: self._race(table, key)
        try:
            result = self.reader.lookup(table, h.key, h.cache_key)
        except Exception as err:  # DynamoDB failed: the reader answers an error, nothing to check
            self.log.append(f"read {h.cache_key} failed: {type(err).__name__}")
            self.table.after_read = None
            self.read_errors += 1
            return None
        self.read_fallbacks += result.redis_errors > 0 or result.bypassed
        self.stats.reads += 1
        self.stats.hits += result.source == "cache"
        self.stats.get_items += result.source != "cache"
        self.stats.fills_rejected += result.fill_rejected
        self.log.append(f"read {h.cache_key} -> {self._read_outcome(h, result)}")
        self._check_read(h, result, floor)
        return result

    @staticmethod
    def _read_outcome(h: model.History, result: Result) -> str:
        item = result.item
        states = [i for i, state in enumerate(h.states) if state.image == item and item is not None]
        shown = "not found" if item is None else f"state {states[0]}" if states else "no state (!)"
        how = " (filled)" if result.filled else " (fill rejected)" if result.fill_rejected else ""
        return f"{shown} from {result.source}{how}"

    def read_unwritten(self) -> Result | None:
        """A read of a key never written and never read: a miss that reaches DynamoDB."""
        self._unwritten += 1
        return self.read(target=("t", {"pk": {"S": f"unwritten-{self._unwritten}"}, "sk": {"S": "x"}}))

    def _race(self, table: str, key: dict[str, Any]) -> None:
        self.log.append("  -- between the reader's DynamoDB read and its fill:")
        record = self.truth.write(table, key, model.OPERATIONS[self.choices.pick(len(model.OPERATIONS))])
        if record is not None:
            self.stats.writes += 1
            ck, state = self.truth.record_states[-1]
            self.pending.setdefault(ck, []).append((state, time.perf_counter(), self.steps))
            self.log.append(f"  write #{len(self.truth.records) - 1} -> state {state}")
        for _ in range(1 + self.choices.pick(3)):
            if not self.deliver():
                break

    # -- the schedule ----------------------------------------------------------

    def tick(self) -> None:
        """One step chosen by the schedule, then the monotonic check."""
        hook = self.at_step.pop(self.steps, None)
        if hook is not None:
            hook()
        action = self.choices.pick_weighted(self.mix.weights)
        if action == 0:
            self.write()
        elif action == 1:
            self.deliver()
        elif action == 2:
            self.read()
        else:
            self.read(race=True)
        self.steps += 1
        self.check_monotonic()

    def drain(self) -> None:
        """Deliver everything (Lambda's retries), then redrive the failure destination."""
        for _ in range(100_000):
            if not self.deliver():
                inv = self.shard.drain_redrives()
                if inv is None:
                    self.check_monotonic()
                    return
                self.run(inv)
            self.check_monotonic()
        raise AssertionError("the shard never caught up:\n" + self.describe())

    # -- checks ----------------------------------------------------------------

    def contents(self) -> dict[str, bytes | None]:
        keys = list(self.truth.by_cache_key)
        return dict(zip(keys, self.client.mget(keys), strict=True)) if keys else {}

    def check_monotonic(self) -> None:
        if not self.checking:
            return
        self.stats.checks += 1
        now = time.perf_counter()
        for ck, value in self.contents().items():
            shown = self.truth.candidates(ck, value)
            self._staleness(ck, shown, now)
            if shown is None:
                continue
            seen = self.observed.get(ck, 0)
            newer = [i for i in shown if i >= seen]
            assert newer, self.fail(f"{ck} went back to state(s) {shown} after showing state {seen}")
            self.observed[ck] = min(newer)

    def _staleness(self, ck: str, shown: list[int] | None, now: float) -> None:
        """A write's staleness ends when the key stops showing any state older than it."""
        waiting = self.pending.get(ck)
        while waiting and (shown is None or max(shown) >= waiting[0][0]):
            _, written, step = waiting.pop(0)
            self.stats.staleness_ms.append((now - written) * 1000.0)
            self.stats.staleness_steps.append(self.steps - step)

    def _check_read(self, h: model.History, result: Result, floor: int) -> None:
        item = result.item
        shown = h.absent_indexes() if item is None else [model.state_of_item(h, item)]
        assert max(shown) >= floor, self.fail(
            f"read of {h.cache_key} from {result.source} answered state(s) {shown}; "
            f"state {floor} had been applied before the read began"
        )

    def check_converged(self) -> None:
        """After draining, with no reader in flight: nothing, or exactly the latest state."""
        for ck, value in self.contents().items():
            shown = self.truth.candidates(ck, value)
            latest = self.truth.by_cache_key[ck].latest
            assert shown is None or latest in shown, self.fail(
                f"{ck} holds state(s) {shown} after draining; the latest is {latest}"
            )
        unknown = {k.decode() for k in self.client.keys("*")} - set(self.truth.by_cache_key)
        assert not unknown, self.fail(f"keys no item maps to: {sorted(unknown)}")

    def forget_cache(self) -> None:
        """Redis lost its data: what it showed before no longer binds, nor what was applied
        but not yet checkpointed (Lambda re-delivers it)."""
        self.observed.clear()
        self.applied_floor.clear()
        for i in sorted(self.applied):
            if i >= self.shard.checkpoint:
                continue
            ck, state = self.truth.record_states[i]
            self.applied_floor[ck] = max(self.applied_floor.get(ck, 0), state)

    def describe(self) -> str:
        return "\n".join(["schedule:", *("  " + line for line in self.log[-200:])])

    def fail(self, message: str) -> str:
        return f"{message}\n{self.describe()}"
