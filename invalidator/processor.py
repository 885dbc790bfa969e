"""One batch of stream records, end to end: plan (pure) -> Redis (I/O) -> batch response.

Not Powertools' ``BatchProcessor``: it handles records one at a time (one
Redis round trip each, the seed's loop) and keeps going after a failure.
Here the whole batch is planned first, written in pipelined chunks, and the
response reports from the first unapplied record on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamcache import entry, metrics, routing
from streamcache.batch import Plan, batch_response, first_unapplied, plan_batch, records_of
from streamcache.errors import RecordError, UnknownTableError
from streamcache.held_connections import Held
from streamcache.keys import table_from_arn
from streamcache.layouts import Layouts
from streamcache.ops import sampling
from streamcache.partitions import TableIndexes, marker_commands, record_markers
from streamcache.protocol import APPLIED, INVALIDATED, SKIPPED, Outcome, Scripts, apply_commands, apply_one
from streamcache.records import Command, command_for, record_key
from streamcache.schema import KeySchemas
from streamcache.settings import Settings

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


@dataclass
class BatchResult:
    response: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)  # every key of _counts
    lag: metrics.Lag | None = None  # stream lag over the batch's records
    unusable: list[tuple[str, str]] = field(default_factory=list)  # (SequenceNumber, why)
    redis_error: str | None = None
    first_failed: str | None = None  # SequenceNumber Lambda will resume at


class Invalidator:
    """Applies stream batches to one Redis client. Made once per execution environment."""

    def __init__(
        self,
        settings: Settings,
        client: Any,
        schemas: KeySchemas,
        clock: Callable[[], float] = time.time,
        layouts: Layouts | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._schemas = schemas
        self._layouts = layouts
        self._scripts = Scripts.register(client)
        self._clock = clock
        self._connections = Held()  # one invocation at a time: keep a connection per node
        # One-record batches in one round trip: a single node, no replica acks, no partition markers.
        self._one_record_path = (
            not routing.is_cluster(client) and settings.redis_min_replica_acks == 0 and layouts is None
        )

    def process(self, event: object, meanwhile: Callable[[], object] | None = None) -> BatchResult:
        """Apply one stream batch.

        ``meanwhile``: the caller's own work for this batch (its log line, say),
        run while Redis runs a one-record batch's write, so that round trip
        hides it. The general path may not run it: the caller then does that
        work itself afterwards. Safe to repeat, never raising (``write_and_read``).
        """
        records = records_of(event)
        if len(records) == 1 and self._one_record_path:
            result = self._one(records, meanwhile)
            if result is not None:
                return result
        prefix = self._settings.key_prefix
        plan = plan_batch(records, lambda r: record_key(r, self._schemas, prefix), command_for)
        markers: list[list[str] | None] = []
        moves: dict[str, Command] = {}
        if self._layouts is not None:  # query results cached: partition markers to move
            markers = self._markers(records, plan, self._layouts)
            moves = marker_commands(records, [m or () for m in markers])
        outcomes = self._write([*plan.commands.values(), *moves.values()])
        sampling.offer(self._client, plan.commands.values(), outcomes)  # consistency checker's samples
        result = self._result(plan, outcomes, markers, self._lag(records))
        if moves:
            result.counts["markers"] = sum(1 for key in moves if outcomes[key] == APPLIED)
        return result

    def _one(
        self, records: list[dict[str, Any]], meanwhile: Callable[[], object] | None
    ) -> BatchResult | None:
        """A one-record batch, the usual one on a quiet stream, without the batch machinery around its write.

        The same key, command, outcome and result as the general path; None
        when the record has no usable key or the write needs the general path's
        recovery (``apply_one``), and ``process`` runs the general path. While
        Redis runs the write, the result it will most likely give (applied) is
        made, and ``meanwhile`` runs.
        """
        record = records[0]
        try:
            key = record_key(record, self._schemas, self._settings.key_prefix)
        except RecordError:
            return None
        command = command_for(record, key)
        plan = Plan([record["dynamodb"]["SequenceNumber"]], [key], {key: command})
        applied: list[BatchResult] = []  # the result if the write applies (the usual), made while it is out

        def during_write() -> None:
            applied[:] = [self._result(plan, {key: APPLIED}, [], self._lag(records))]
            if meanwhile is not None:
                meanwhile()

        outcome = apply_one(
            self._client,
            self._scripts.apply,
            command,
            self._settings.cache_ttl_seconds,
            fill_margin_ms=self._settings.fill_clock_margin_ms,
            connections=self._connections,
            meanwhile=during_write,
        )
        if outcome is None:
            return None
        outcomes = {key: outcome}
        sampling.offer(self._client, plan.commands.values(), outcomes)
        if applied and outcome == APPLIED:
            return applied[0]
        return self._result(plan, outcomes, [], applied[0].lag if applied else self._lag(records))

    def _markers(self, records: list[dict[str, Any]], plan: Plan, layouts: Layouts) -> list[list[str] | None]:
        """Per record, the query-cache partition markers it moves (None: cannot be known now)."""
        prefix = self._settings.key_prefix
        markers: list[list[str] | None] = []
        known: dict[str, TableIndexes | bool] = {}  # per table: its layout; False: not cached; True: unknown
        for record, key in zip(records, plan.record_keys, strict=True):
            table = table_from_arn(record.get("eventSourceARN")) if key is not None else ""
            if table not in known:
                known[table] = _layout(layouts, table) if key is not None else False
            layout = known[table]
            if layout is True:
                markers.append(None)  # reported: Lambda retries once DescribeTable answers
            else:
                markers.append([] if layout is False else record_markers(record, table, layout, prefix))
        return markers

    def _write(self, commands: list[Command]) -> dict[str, Outcome]:
        ttl = self._settings.cache_ttl_seconds
        options = self._settings.apply_options
        held = self._connections
        results = apply_commands(
            self._client, self._scripts.apply, commands, ttl, **options, connections=held
        )
        outcomes = {c.key: o for c, o in zip(commands, results, strict=True)}
        # Fail safe: a key whose write was refused (not unreachable) is invalidated instead.
        refused = [c for c in commands if _refused(outcomes[c.key])]
        if refused:
            fallbacks = [_as_invalidation(c) for c in refused]
            retried = apply_commands(
                self._client, self._scripts.apply, fallbacks, ttl, **options, connections=held
            )
            outcomes.update(
                (c.key, INVALIDATED if o == APPLIED else o) for c, o in zip(refused, retried, strict=True)
            )
        return outcomes

    def _lag(self, records: list[dict[str, Any]]) -> metrics.Lag | None:
        return metrics.lag(metrics.creation_times(records), self._clock())

    def _result(
        self,
        plan: Plan,
        outcomes: dict[str, Outcome],
        markers: list[list[str] | None],
        lag: metrics.Lag | None,
    ) -> BatchResult:
        failed = {key: o for key, o in outcomes.items() if isinstance(o, Exception)}
        first = first_unapplied(plan, set(failed), markers)
        seqs = plan.sequence_numbers
        return BatchResult(
            batch_response(seqs, first),
            _counts(plan, outcomes),
            lag,
            [(seqs[i], why) for i, why in plan.unusable],
            type(next(iter(failed.values()))).__name__ if failed else None,
            None if first is None else seqs[first],
        )


def _layout(layouts: Layouts, table: str) -> TableIndexes | bool:
    """The table's layout; False when its queries are not cached; True when it cannot be known now."""
    if not layouts.caches(table):
        return False
    try:
        return layouts.of(table)
    except UnknownTableError:
        return True


def _refused(outcome: Outcome) -> bool:
    return isinstance(outcome, Exception) and not isinstance(outcome, _UNREACHABLE)


def _as_invalidation(command: Command) -> Command:
    return Command(command.key, entry.INVALIDATED, command.version, b"", "refused")


def _counts(plan: Plan, outcomes: dict[str, Outcome]) -> dict[str, int]:
    applied = failed = skipped = invalidated = 0
    for key, command in plan.commands.items():
        outcome = outcomes[key]
        if outcome == APPLIED and command.kind != entry.INVALIDATED:  # the common case, asked first
            applied += 1
        elif isinstance(outcome, Exception):
            failed += 1
        elif outcome == SKIPPED:
            skipped += 1
        else:  # INVALIDATED (a refused write's fallback), or an applied invalidation
            invalidated += 1
    unusable = len(plan.unusable)
    return {
        "records": len(plan.sequence_numbers),
        "unusable": unusable,
        "applied": applied,
        "skipped_older": skipped,
        "invalidated": invalidated,
        "failed": failed + unusable,
        "key_schema_mismatch": plan.key_schema_mismatches,
        "deduplicated": len(plan.sequence_numbers) - unusable - len(plan.commands),
        "markers": 0,
    }
