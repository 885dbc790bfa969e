"""``make demo`` in-process with a small item count, and the pieces that make its lag figures honest."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from streamcache.local import esm
from streamcache.local.demo import POISON_KEY, DemoOptions, is_demo_poison, run_demo, typed_key
from streamcache.local.poller import (
    FoldedProgress,
    creation_resolution,
    invalidation_delays_ms,
    poll_while_writing,
)

from .esm_fakes import FakeClock, FakeStream, raw_record

T0 = 1_800_000_000.0


@pytest.mark.parametrize("redis_choice", ["redis-server", "fakeredis"])
def test_demo_verifies_and_exits_zero(monkeypatch: pytest.MonkeyPatch, redis_choice: str) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    lines: list[str] = []
    code = run_demo(DemoOptions(items=40, redis=redis_choice, batch_size=10), say=lines.append)
    text = "\n".join(lines)
    assert code == 0, text
    assert "verification           OK: all 40 keys in Redis match the table or are absent" in text
    assert "stale before redrive   1 key(s)" in text  # the poison left its key stale until redrive
    assert "sent to destination    1 OnFailure record(s), 1 record(s)" in text
    assert "reads, pass 2          cache hits 40, misses 0" in text
    third = re.search(
        r"reads, pass 3          cache hits 40, misses 0 \((\d+) of the hits from the near cache", text
    )
    assert third is not None, text
    if redis_choice == "redis-server":  # fakeredis has no CLIENT TRACKING: the near cache turns itself off
        assert int(third.group(1)) > 0
        assert re.search(r"near cache lag p50/p99 [\d.]+ ms / [\d.]+ ms over Redis \(50 writes", text), text
    else:
        assert "near cache lag p50/p99 near cache off" in text
    assert ("fakeredis" in text) == (redis_choice == "fakeredis")
    # moto 5.2 gives ApproximateCreationDateTime to the millisecond (AWS rounds it down to the second)
    assert re.search(
        r"stream lag p50 / p99   \d+ ms / \d+ ms \(ApproximateCreationDateTime to the ms\)", text
    )
    assert re.search(r"invalidation p50 / p99 \d+ ms / \d+ ms \(after the write returned\)", text)
    assert re.search(r"\[2/5\] 55 writes done in [\d.]+ s, \d+ record\(s\) already delivered", text)
    checked = re.search(
        r"consistency checker    ([1-9]\d*) of (\d+) sampled writes consistent after 1 s$", text, re.M
    )
    assert checked and checked[1] == checked[2], text


def test_demo_fails_when_the_cache_disagrees_with_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a redrive that does nothing, the poison's key stays stale
    from streamcache.local import demo
    from streamcache.local.redrive import RedriveReport

    monkeypatch.setattr(demo, "_redrive", lambda *args: RedriveReport())
    monkeypatch.setattr(demo, "_read_passes", lambda *args: [])  # the reader would serve the stale entry
    lines: list[str] = []
    assert run_demo(DemoOptions(items=20, redis="redis-server"), say=lines.append) == 1
    assert any("verification           FAILED: 1 key(s)" in line for line in lines)


def test_records_are_delivered_while_writing_and_polling_stops_once_caught_up() -> None:
    # GIVEN writes at +0.1 s, +0.6 s and +1.1 s, the last one returning at +1.2 s
    clock = FakeClock(T0)
    stream = FakeStream(
        clock, {"shard-1": [raw_record(seq, T0 + at) for seq, at in ((1, 0.1), (2, 0.6), (3, 1.1))]}
    )
    writes_done = threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= T0 + 1.2:
            writes_done.set()

    invoked_at: list[float] = []
    mapping = esm.EventSourceMapping(
        stream, lambda event, context: invoked_at.append(clock.now), esm.MappingConfig(),
        timing=esm.Timing(clock=clock.clock, sleep=sleep),
    )  # fmt: skip

    # WHEN the mapping polls while the writes go on
    stats = poll_while_writing(mapping, writes_done)

    # THEN each record is delivered at the next poll (4 a second), not after the writes
    assert invoked_at == [T0 + 0.25, T0 + 0.75, T0 + 1.25]
    assert [round(lag) for lag in stats.lags_ms()] == [150, 150, 150]
    # AND the poller stopped after the first empty poll that began once the writes were done
    assert clock.now == T0 + 1.5


def test_invalidation_delay_pairs_each_record_with_its_own_write() -> None:
    a, b = ("a", 1), ("b", 2)
    writes = [(a, 10.0), (b, 10.1), (a, 10.2)]
    stream = [("s1", a), ("s2", b), ("s3", a)]
    applied = {"s1": 10.05, "s3": 10.5}  # s2 was discarded (never applied): no figure for it
    assert [round(d) for d in invalidation_delays_ms(writes, stream, applied)] == [50, 300]


def test_invalidation_delay_is_never_negative() -> None:
    # the record may be applied before the writer has parsed moto's reply
    assert invalidation_delays_ms([(("a", 1), 10.2)], [("s1", ("a", 1))], {"s1": 10.1}) == [0.0]


def test_creation_resolution_says_when_timestamps_are_whole_seconds() -> None:
    def deliveries(*created: float | None) -> list[esm.Delivery]:
        return [esm.Delivery(str(i), c, 2e9) for i, c in enumerate(created)]

    assert creation_resolution(deliveries(T0 + 0.123, T0 + 1)) == "ApproximateCreationDateTime to the ms"
    assert "whole seconds" in creation_resolution(deliveries(T0, T0 + 1))
    assert creation_resolution(deliveries(None)) == "no ApproximateCreationDateTime"


def test_folded_progress_keeps_fault_lines_in_order() -> None:
    now = [0.0]
    lines: list[str] = []
    progress = FoldedProgress(lines.append, every_s=1.0, clock=lambda: now[0])
    progress("delivered 2 record(s) 1..2")
    progress("delivered 3 record(s) 3..5")
    progress("shard: function error -> bisect into 1 + 1")
    progress("delivered 1 record(s) 6..6")
    now[0] = 1.0
    progress("delivered 4 record(s) 7..10")
    progress.flush()
    assert lines == [
        "      delivered 5 record(s) in 2 invocation(s) 1..5",
        "      shard: function error -> bisect into 1 + 1",
        "      delivered 5 record(s) in 2 invocation(s) 6..10",
    ]


def test_the_poison_is_the_update_of_its_key_only() -> None:
    def record(event_name: str, key: Any) -> dict[str, Any]:
        return {"eventName": event_name, "dynamodb": {"Keys": typed_key(key), "SequenceNumber": "1"}}

    assert is_demo_poison(record("MODIFY", POISON_KEY))
    assert not is_demo_poison(record("INSERT", POISON_KEY))
    assert not is_demo_poison(record("MODIFY", ("a-b", 1)))
