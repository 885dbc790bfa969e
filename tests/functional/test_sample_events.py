"""Every sample event in events/ goes through the invalidator with the documented outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import invalidator.handler as invalidator_handler
from streamcache.local.events import SAMPLE_KEY_SCHEMA
from streamcache.local.inspect import holding

EVENTS = Path(__file__).resolve().parents[2] / "events"
BIG = "12345678901234567890123456789012345678"

# file -> (reported sequence numbers, {key: state})
EXPECTED = {
    "insert.json": ([], {"orders-u1-42": "item"}),
    "modify.json": ([], {"orders-u1-42": "item"}),
    "remove.json": ([], {"orders-u1-42": "not found (tombstone)"}),
    "ttl-expiry.json": ([], {"orders-u2-7": "not found (tombstone)"}),
    "keys-only.json": ([], {"orders-u1-42": "invalidated"}),
    "new-image-view.json": ([], {"orders-u3-1": "item"}),
    "hyphen-percent-keys.json": (
        [],
        {"orders-a%2Db-1": "item", "orders-a-%2D1": "item", "orders-50%25%2Doff-1.5": "item"},
    ),
    "big-number-key.json": ([], {f"orders-u4-{BIG}": "item"}),
    "binary-key.json": ([], {"attachments-3q2+7w==": "item"}),
    "poison-batch.json": (
        ["1100000000017454424209", "1100000000017454424309"],
        {"orders-u5-1": "item", "orders-u5-2": "item"},
    ),
}


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, redis_url: str):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("KEY_SCHEMA", json.dumps(SAMPLE_KEY_SCHEMA))
    invalidator_handler.reset()
    yield invalidator_handler.handler
    invalidator_handler.reset()


def test_every_sample_event_has_an_expectation() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event(handler, cache, name: str) -> None:
    reported, states = EXPECTED[name]
    response = handler(json.loads((EVENTS / name).read_text()), None)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == reported
    assert {key: holding(cache, key)["state"] for key in states} == states


def test_modify_then_replayed_insert_keeps_the_modify(handler, cache) -> None:
    for name in ("modify.json", "insert.json"):
        handler(json.loads((EVENTS / name).read_text()), None)
    assert holding(cache, "orders-u1-42")["item"]["status"] == {"S": "PAID"}
