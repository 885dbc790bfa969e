"""The checker Lambda with the real invalidator handler and a real redis-server.

The invalidator samples what it applies (here every record, checked after 0 s)
once the checker has armed the sample set; the checker's next run judges them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import checker.handler as checker_handler
import invalidator.handler as invalidator_handler
from streamcache import entry
from streamcache.ops import sampling
from tests.conftest import RedisTarget

EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "insert.json").read_text())


@pytest.fixture
def lambdas(monkeypatch: pytest.MonkeyPatch, any_redis: RedisTarget) -> Iterator[Any]:
    """The two handlers on a single node and on a cluster (the sample set is one key: one slot)."""
    env = {
        **any_redis.env,
        "KEY_SCHEMA": '{"orders": ["pk", "sk"], "users": ["id"]}',
        "CONSISTENCY_SAMPLE_RATE": "1",
        "CONSISTENCY_CHECK_DELAYS": "0",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for module in (invalidator_handler, checker_handler):
        module.reset()
    sampling.configure(None)
    client = any_redis.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()
    for module in (invalidator_handler, checker_handler):
        module.reset()
    sampling.configure(None)


def check() -> dict[str, Any]:
    return checker_handler.handler({"source": "aws.events"}, None)


def test_applied_records_are_checked_consistent(lambdas: Any) -> None:
    assert check()["checked"] == 0  # the first run arms the set
    invalidator_handler.handler(EVENT, None)
    result = check()
    assert result["checked"] == len(EVENT["Records"]) and result["inconsistent"] == 0


def test_a_lost_write_is_reported_and_repaired(
    lambdas: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CONSISTENCY_REPAIR", "true")
    check()
    invalidator_handler.handler(EVENT, None)
    # a failover to a replica that never got the write: the key holds an older item
    key = "orders-u1-42"  # the key of events/insert.json's one record
    lambdas.set(key, entry.ITEM + b"1".zfill(40) + b'{"secret":{"S":"card"}}')
    result = check()
    assert (result["inconsistent"], result["repaired"]) == (1, 1)
    assert entry.decode(lambdas.get(key)).kind == entry.INVALIDATED
    (found,) = [r.__dict__ for r in caplog.records if r.getMessage() == "inconsistent key"]
    assert (found["cache_key"], found["held"], found["after_s"]) == (key, "I@1", 0)
    assert "card" not in caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)


def test_a_bad_setting_names_itself(lambdas: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSISTENCY_REPAIR", "sometimes")
    with pytest.raises(Exception, match="CONSISTENCY_REPAIR='sometimes' is not true or false"):
        check()
