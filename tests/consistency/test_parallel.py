"""Concurrent invalidator batches: the event source mapping emulator with ParallelizationFactor > 1.

AWS (with-ddb): "When you increase the number of concurrent batches per shard, Lambda still ensures
in-order processing at the item (partition and sort key) level." The real invalidator runs in several
batches of one shard at once, against one real redis-server, with function errors and partial batch
responses on the way (bisects, retries from the checkpoint); every key must never move back to an older
state (checked after every invocation, while other batches are in flight) and must converge.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
import redis

from consistency.world import KEY_POOL, SEQUENCE_STARTS, Mix, Stats, World
from streamcache.local import esm
from streamcache.local.schedule import Choices
from streamcache.local.stream import Page, Shard

# One stream belongs to one table: the world's keys of table "t" only.
T_KEYS = tuple(i for i, (table, _) in enumerate(KEY_POOL) if table == "t")


class TruthStream:
    """The world's records as one closed shard of one table's stream."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.arn = records[0]["eventSourceARN"]

    def shards(self) -> list[Shard]:
        return [Shard("shard-0", None, True)]

    def iterator(self, shard_id: str, kind: str, sequence_number: str | None = None) -> str:
        return "0"

    def read(self, iterator: str, limit: int) -> Page:
        start = int(iterator)
        end = min(start + limit, len(self.records))
        return Page(self.records[start:end], None if end == len(self.records) else str(end))


class FlakyInvalidator:
    """The world's invalidator as a Lambda handler that sometimes raises or reports a record first."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world, self.rng = world, rng
        self.lock = threading.Lock()  # the checker and the rng are shared by the lanes
        self.in_flight = self.most_in_flight = 0
        self.regressions: list[str] = []  # a raise here would be taken for a function error and retried

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            fate = self.rng.random()
        try:
            return self._handle(event["Records"], fate)
        finally:
            with self.lock:
                self.in_flight -= 1
                try:
                    self.world.check_monotonic()  # while the other lanes' batches are in flight
                except AssertionError as err:
                    self.regressions.append(str(err))

    def _handle(self, records: list[dict[str, Any]], fate: float) -> dict[str, Any]:
        if fate < 0.15:
            raise RuntimeError("injected function error")
        if fate < 0.3 and len(records) > 1:  # applies the records before the reported one, as a real handler
            cut = len(records) // 2
            response = self.world.invalidator.process({"Records": records[:cut]}).response
            reported = [f["itemIdentifier"] for f in response["batchItemFailures"]]
            return {"batchItemFailures": [{"itemIdentifier": s} for s in reported or [_seq(records[cut])]]}
        return self.world.invalidator.process({"Records": records}).response


def _seq(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("factor", [2, 5, 10])
def test_concurrent_batches_never_regress_and_converge(
    cache: redis.Redis, stats: Stats, seed: int, factor: int
) -> None:
    # GIVEN bursts of writes to a few items of one table
    mix = Mix(keys=T_KEYS, burst=4)
    world = World(
        cache, Choices.seeded(seed), "NEW_AND_OLD_IMAGES", SEQUENCE_STARTS[seed % 3], stats, mix=mix
    )
    for _ in range(40):
        world.write()
    handler = FlakyInvalidator(world, random.Random(seed))
    config = esm.MappingConfig(
        batch_size=3,
        parallelization_factor=factor,
        bisect_batch_on_function_error=True,
        report_batch_item_failures=True,
        maximum_retry_attempts=-1,  # nothing discarded: every record is applied in the end
    )
    # WHEN the mapping delivers the stream in concurrent batches
    mapping = esm.EventSourceMapping(TruthStream(world.truth.records), handler, config)
    mapping.run()
    stats.invocations += mapping.stats.invocations
    stats.records_delivered += mapping.stats.records_delivered
    stats.errors += mapping.stats.function_errors
    stats.partials += mapping.stats.failed_responses
    # THEN every record was delivered once checkpointed, and the cache converged to the latest states
    assert mapping.stats.records_delivered == len(world.truth.records)
    assert mapping.stats.records_discarded == 0
    assert handler.regressions == []
    print(f"factor {factor}: at most {handler.most_in_flight} invocations in flight")
    world.check_converged()
