"""A scripted stream and clock for the event source mapping tests (no AWS, no sleeping)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamcache.local import events
from streamcache.local.esm import Timing
from streamcache.local.stream import Page, Shard

ARN = events.stream_arn("orders")


@dataclass
class FakeClock:
    now: float = 1_800_000_000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def timing(self, **kw: Any) -> Timing:
        return Timing(clock=self.clock, sleep=self.sleep, **kw)


def raw_record(seq: int, created: float, pk: str = "u", sk: int | None = None) -> dict[str, Any]:
    """A record as GetRecords returns it (no eventSourceARN)."""
    keys = {"pk": {"S": pk}, "sk": {"N": str(seq if sk is None else sk)}}
    record = events.record("orders", "INSERT", keys, seq, new=events.item(keys), created=created)
    del record["eventSourceARN"]
    return record


@dataclass
class FakeStream:
    """Shards of records; a record is visible once ``clock.now`` reaches its creation time."""

    clock: FakeClock
    records: dict[str, list[dict[str, Any]]]
    parents: dict[str, str] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    arn: str = ARN
    reads: list[str] = field(default_factory=list)

    def shards(self) -> list[Shard]:
        return [Shard(s, self.parents.get(s), s in self.closed) for s in self.records]

    def iterator(self, shard_id: str, kind: str, sequence_number: str | None = None) -> str:
        position = len(self._visible(shard_id)) if kind == "LATEST" else 0
        return f"{shard_id}|{position}"

    def read(self, iterator: str, limit: int) -> Page:
        shard_id, position = iterator.split("|")
        self.reads.append(shard_id)
        visible = self._visible(shard_id)
        start = int(position)
        page = visible[start : start + limit]
        end = start + len(page)
        if shard_id in self.closed and end >= len(self.records[shard_id]):
            return Page(page, None)
        return Page(page, f"{shard_id}|{end}")

    def _visible(self, shard_id: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records[shard_id]
            if r["dynamodb"]["ApproximateCreationDateTime"] <= self.clock.now
        ]


def seqs(event: dict[str, Any]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]]
