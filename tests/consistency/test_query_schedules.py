"""Randomized schedules with queries among the reads, against a model table whose GSI lags.

The model: a table ``orders`` (pk, sk) with a global secondary index
``byStatus`` (status, sk). Writes commit to the model at once; the base table
is read consistently; the index shows each write only ``lag`` ms after its
commit (in commit order per item), as DynamoDB's asynchronous index updates
do. Stream records go to the real invalidator (real Redis, real scripts) in
order, with re-deliveries of earlier records, at random times. Queries go
through the real ``QueryReads`` (pages, markers, settle rule) over the model.

Invariants:
- during the schedule, a base-table query never answers a state older than
  the newest record the invalidator had applied when the query began;
- after the stream is processed and the index has settled, every cached
  query (base partitions and index partitions) answers exactly what the
  table answers.

The settle rule (``INDEX_SETTLE_MS`` above the index's lag) is what keeps a
GSI page read before the index caught up out of the cache; with it set to 0
the search must find a stale page (``test_without_the_settle_rule_a_stale_gsi_page_is_found``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import redis
from boto3.dynamodb.conditions import Key

from invalidator.processor import Invalidator
from streamcache.circuit import CircuitBreaker
from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
from streamcache.layouts import Layouts
from streamcache.local import events
from streamcache.local.redis_server import RedisServer
from streamcache.read.pages import Pages
from streamcache.read.querying import QueryReads
from streamcache.schema import KeySchemas
from streamcache.settings import Settings

TABLE = "orders"
PKS = ("u1", "u2")
SKS = (1, 2, 3)
STATUSES = ("open", "shipped", "lost")
GSI_MAX_LAG_MS = 15
SETTLE_MS = 60
DESCRIPTION = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "byStatus",
            "KeySchema": [
                {"AttributeName": "status", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        }
    ],
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}

Item = dict[str, Any]


@dataclass
class Write:
    key: tuple[str, int]
    old: Item | None
    new: Item | None
    committed_ms: float
    visible_in_index_ms: float


@dataclass
class ModelTable:
    """What DynamoDB holds: the write log; the base table now; the index as it lags."""

    rng: random.Random
    writes: list[Write] = field(default_factory=list)
    name: str = TABLE
    key_schema: list[dict[str, str]] = field(default_factory=lambda: DESCRIPTION["KeySchema"])  # type: ignore[return-value]
    global_secondary_indexes: list[Any] = field(default_factory=lambda: DESCRIPTION["GlobalSecondaryIndexes"])  # type: ignore[return-value]
    local_secondary_indexes: None = None
    stream_specification: dict[str, Any] = field(default_factory=lambda: DESCRIPTION["StreamSpecification"])  # type: ignore[return-value]
    # Runs while a query's DynamoDB read is in flight: a write whose record is applied
    # after the read but before the fill (the stale-fill race).
    during_read: Any = None

    def state(self, upto: int | None = None, index_at_ms: float | None = None) -> dict[tuple[str, int], Item]:
        items: dict[tuple[str, int], Item] = {}
        for write in self.writes[:upto]:
            if index_at_ms is not None and write.visible_in_index_ms > index_at_ms:
                continue
            if write.new is None:
                items.pop(write.key, None)
            else:
                items[write.key] = write.new
        return items

    def write(self, key: tuple[str, int], new: Item | None) -> Write:
        now = _now_ms()
        previous = [w for w in self.writes if w.key == key]
        visible = now + self.rng.uniform(0, GSI_MAX_LAG_MS)
        if previous:  # an index shows one item's writes in order
            visible = max(visible, previous[-1].visible_in_index_ms)
        write = Write(key, self.state().get(key), new, now, visible)
        self.writes.append(write)
        return write

    def query(self, **kwargs: Any) -> dict[str, Any]:
        attribute, value = _equality(kwargs["KeyConditionExpression"])
        index = kwargs.get("IndexName")
        if index is not None:
            assert not kwargs.get("ConsistentRead"), "a GSI cannot be read consistently"
            state = self.state(index_at_ms=_now_ms())
        else:
            assert kwargs.get("ConsistentRead") is True, "a fill must read the base table consistently"
            state = self.state()
        result = answer(state, attribute, value)
        if self.during_read is not None:
            self.during_read()
        return result


def answer(state: dict[tuple[str, int], Item], attribute: str, value: Any) -> dict[str, Any]:
    items = sorted((dict(i) for i in state.values() if i.get(attribute) == value), key=lambda i: i["sk"])
    return {"Items": items, "Count": len(items), "ScannedCount": len(items)}


def _equality(condition: Any) -> tuple[str, Any]:
    expression = condition.get_expression()
    assert expression["operator"] == "="
    key, value = expression["values"]
    return key.name, value


def _now_ms() -> float:
    return time.time() * 1000


@dataclass
class Run:
    table: ModelTable
    invalidator: Invalidator
    reads: QueryReads
    rng: random.Random
    sequence: int = events.FIRST_SEQUENCE
    records: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0  # records handed to the invalidator, in order
    checks: int = 0
    raced: int = 0  # writes applied while a query's DynamoDB read was in flight

    def write(self) -> None:
        key = (self.rng.choice(PKS), self.rng.choice(SKS))
        if self.rng.random() < 0.2:
            new: Item | None = None
        else:
            new = {
                "pk": key[0],
                "sk": Decimal(key[1]),
                "status": self.rng.choice(STATUSES),
                "v": Decimal(self.rng.randint(0, 10**6)),
            }
        write = self.table.write(key, new)
        keys = {"pk": {"S": key[0]}, "sk": {"N": str(key[1])}}
        event = "REMOVE" if new is None else ("MODIFY" if write.old else "INSERT")
        self.sequence += 100
        self.records.append(
            events.record(TABLE, event, keys, self.sequence, new=_typed(new), old=_typed(write.old))
        )

    def deliver(self) -> None:
        """The next few records, sometimes with a replay of earlier ones (a retry from a checkpoint)."""
        end = min(len(self.records), self.delivered + self.rng.randint(1, 3))
        start = self.delivered
        if start and self.rng.random() < 0.3:
            start = self.rng.randrange(start)
        batch = self.records[start:end]
        if batch:
            result = self.invalidator.process(events.event(batch))
            assert result.response == {"batchItemFailures": []}
            self.delivered = max(self.delivered, end)

    def race(self) -> None:
        """A write to a queried partition lands and is applied while the query reads DynamoDB."""
        if self.rng.random() < 0.3:
            self.write()
            self.delivered_all()

    def delivered_all(self) -> None:
        result = self.invalidator.process(events.event(self.records[self.delivered :]))
        assert result.response == {"batchItemFailures": []}
        self.delivered = len(self.records)
        self.raced += 1

    def query(self) -> None:
        if self.rng.random() < 0.5:
            attribute, value, kwargs = "pk", self.rng.choice(PKS), {}
        else:
            attribute, value, kwargs = "status", self.rng.choice(STATUSES), {"IndexName": "byStatus"}
        applied = self.delivered  # the stream's records applied when the query began
        self.table.during_read = self.race
        try:
            got = self.reads.query({"KeyConditionExpression": Key(attribute).eq(value), **kwargs})
        finally:
            self.table.during_read = None
        got = {k: v for k, v in got.items() if k != "ResponseMetadata"}
        if attribute == "pk":
            allowed = [
                answer(self.table.state(n), "pk", value) for n in range(applied, len(self.table.writes) + 1)
            ]
            assert got in allowed, f"base query for {value!r} answered a state older than the applied records"
            self.checks += 1

    def converge(self) -> None:
        """Everything delivered, the index settled: every cached query is exactly the table's."""
        self.invalidator.process(events.event(self.records[self.delivered :]))
        self.delivered = len(self.records)
        time.sleep((GSI_MAX_LAG_MS + 5) / 1000)
        for attribute, values, kwargs in (("pk", PKS, {}), ("status", STATUSES, {"IndexName": "byStatus"})):
            for value in values:
                for _ in range(2):  # the second read is served from the cache when the first filled
                    got = self.reads.query({"KeyConditionExpression": Key(attribute).eq(value), **kwargs})
                    got = {k: v for k, v in got.items() if k != "ResponseMetadata"}
                    truth = answer(self.table.state(index_at_ms=_now_ms()), attribute, value)
                    assert got == truth, f"{attribute}={value!r} stays stale after the stream was processed"
                    self.checks += 1


def _typed(item: Item | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "pk": {"S": item["pk"]},
        "sk": {"N": str(item["sk"])},
        "status": {"S": item["status"]},
        "v": {"N": str(item["v"])},
    }


def run_schedule(server: RedisServer, seed: int, settle_ms: int, steps: int = 60) -> Run:
    client = redis.Redis.from_url(server.url)
    client.flushall()
    settings = Settings.from_env({"REDIS_URL": server.url, "QUERY_CACHE_TABLES": TABLE})
    rng = random.Random(seed)
    table = ModelTable(rng)
    invalidator = Invalidator(
        settings,
        redis_client(settings, INVALIDATOR_TIMEOUTS),
        KeySchemas({TABLE: ("pk", "sk")}, None),
        layouts=Layouts(settings.query_cache_tables, lambda _t: DESCRIPTION),
    )
    reads = QueryReads(
        table, Pages(client), CircuitBreaker(3, 0.05), True, "", ttl_seconds=600, settle_ms=settle_ms
    )
    run = Run(table, invalidator, reads, rng)
    for _ in range(steps):
        action = rng.choices((run.write, run.deliver, run.query, _pause), weights=(3, 3, 5, 1))[0]
        action()
    run.converge()
    client.close()
    return run


def _pause() -> None:
    time.sleep(0.005)


@pytest.mark.parametrize("seed", range(30))
def test_queries_never_answer_older_than_applied_records_and_converge(
    redis_server: RedisServer, seed: int
) -> None:
    run = run_schedule(redis_server, seed, SETTLE_MS)
    assert run.checks > 10
    assert run.reads.counters.hits > 0  # the cache was really used
    assert run.raced > 0  # and raced


def test_without_the_settle_rule_a_stale_gsi_page_is_found(redis_server: RedisServer) -> None:
    """Proof the suite can fail: with INDEX_SETTLE_MS=0 a GSI page read before the index caught up sticks."""
    for seed in range(40):
        try:
            run_schedule(redis_server, seed, settle_ms=0)
        except AssertionError as err:
            assert "stays stale" in str(err)
            return
    pytest.fail("40 schedules without the settle rule found no stale GSI page")
