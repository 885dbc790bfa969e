"""A scripted stream and clock for the event source mapping tests (no AWS, no sleeping)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamcache.local import events
from streamcache.local.esm import Timing
from streamcache.local.stream import DataTrimmed, Page, Shard

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
    """Shards of records; a record is visible once ``clock.now`` reaches its creation time.

    ``empty_pages``: that many reads answer an empty page (with an iterator that
    does not advance) before the shard gives records, as GetRecords may.
    ``fail_reads``: exceptions raised by the next reads, in order (an expired
    iterator, trimmed data). ``trimmed_before``: sequence numbers below it are
    gone (older than the retention): positioning at one raises ``DataTrimmed``.
    """

    clock: FakeClock
    records: dict[str, list[dict[str, Any]]]
    parents: dict[str, str] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    arn: str = ARN
    reads: list[str] = field(default_factory=list)
    empty_pages: int = 0
    fail_reads: list[Exception] = field(default_factory=list)
    trimmed_before: int = 0
    iterators: list[tuple[str, str | None]] = field(default_factory=list)  # (kind, sequence number) asked

    def shards(self) -> list[Shard]:
        return [Shard(s, self.parents.get(s), s in self.closed) for s in self.records]

    def iterator(self, shard_id: str, kind: str, sequence_number: str | None = None) -> str:
        self.iterators.append((kind, sequence_number))
        visible = self._visible(shard_id)
        if kind == "LATEST":
            return f"{shard_id}|{len(visible)}"
        if kind == "TRIM_HORIZON":
            return f"{shard_id}|{self._horizon(shard_id)}"
        assert sequence_number is not None
        if int(sequence_number) < self.trimmed_before:
            raise DataTrimmed(f"TrimmedDataAccessException: {sequence_number} was trimmed")
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in self.records[shard_id]]
        position = numbers.index(int(sequence_number)) + (kind == "AFTER_SEQUENCE_NUMBER")
        return f"{shard_id}|{position}"

    def read(self, iterator: str, limit: int) -> Page:
        shard_id, position = iterator.split("|")
        self.reads.append(shard_id)
        if self.fail_reads:
            raise self.fail_reads.pop(0)
        start = max(int(position), self._horizon(shard_id))
        if self.empty_pages:
            self.empty_pages -= 1
            return Page([], f"{shard_id}|{start}")
        visible = self._visible(shard_id)
        page = visible[start : start + limit]
        end = start + len(page)
        if shard_id in self.closed and end >= len(self.records[shard_id]):
            return Page(page, None)
        return Page(page, f"{shard_id}|{end}")

    def _horizon(self, shard_id: str) -> int:
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in self.records[shard_id]]
        return sum(1 for n in numbers if n < self.trimmed_before)

    def _visible(self, shard_id: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records[shard_id]
            if r["dynamodb"]["ApproximateCreationDateTime"] <= self.clock.now
        ]


def seqs(event: dict[str, Any]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]]
