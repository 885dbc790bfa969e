"""Query pages in Redis: filled only under the marker seen, never served after a record moved it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from streamcache import entry
from streamcache.partitions import BASE, marker_key, result_key
from streamcache.protocol import Scripts
from streamcache.read.pages import Pages
from streamcache.read.query import QueryPlan

if TYPE_CHECKING:
    from tests.conftest import RedisTarget

MARKER = marker_key("", "orders", BASE, {"S": "u1"})
BASE_PLAN = QueryPlan(BASE, MARKER, result_key(MARKER, "d1"), global_index=False)
GSI_MARKER = marker_key("", "orders", "byStatus", {"S": "open"})
GSI_PLAN = QueryPlan("byStatus", GSI_MARKER, result_key(GSI_MARKER, "d2"), global_index=True)
TTL = 600


@pytest.fixture
def client(any_redis: RedisTarget) -> Any:
    c = any_redis.client()
    yield c
    c.close()


def move(client: Any, marker: str, seq: int) -> None:
    """What the invalidator does for a record of the partition (apply.lua, kind M)."""
    version = entry.pad_version(str(seq))
    apply = Scripts.register(client).apply
    assert apply(keys=[marker], args=["M", version, "M" + version, TTL, "0", "1000"]) == 1


def test_a_page_filled_under_the_marker_is_served(client: Any) -> None:
    pages = Pages(client)
    seen = pages.read(BASE_PLAN)
    assert seen.payload is None
    assert pages.fill(BASE_PLAN, seen, b'{"Count":0}', TTL, settle_ms=1000)
    assert pages.read(BASE_PLAN).payload == b'{"Count":0}'


def test_a_record_applied_during_the_read_refuses_the_fill(client: Any) -> None:
    pages = Pages(client)
    move(client, MARKER, 100)
    seen = pages.read(BASE_PLAN)
    move(client, MARKER, 101)  # a write's record lands while DynamoDB is read
    assert not pages.fill(BASE_PLAN, seen, b"old", TTL, settle_ms=0)
    assert pages.read(BASE_PLAN).payload is None


def test_a_record_applied_after_the_fill_hides_the_page(client: Any) -> None:
    pages = Pages(client)
    seen = pages.read(BASE_PLAN)
    assert pages.fill(BASE_PLAN, seen, b"page", TTL, settle_ms=0)
    move(client, MARKER, 200)
    assert pages.read(BASE_PLAN).payload is None


def test_a_replayed_older_record_does_not_revive_a_page(client: Any) -> None:
    pages = Pages(client)
    move(client, MARKER, 300)
    assert pages.fill(BASE_PLAN, pages.read(BASE_PLAN), b"page", TTL, settle_ms=0)
    move(client, MARKER, 301)
    stale = client.get(MARKER)
    apply = Scripts.register(client).apply
    old = entry.pad_version("300")
    assert apply(keys=[MARKER], args=["M", old, "M" + old, TTL, "0", "1000"]) == 0
    assert client.get(MARKER) == stale
    assert pages.read(BASE_PLAN).payload is None


def test_a_global_index_page_waits_for_the_index_to_settle(client: Any) -> None:
    pages = Pages(client)
    move(client, GSI_MARKER, 400)  # moved just now: the index may not show the write yet
    seen = pages.read(GSI_PLAN)
    assert not pages.fill(GSI_PLAN, seen, b"maybe-stale", TTL, settle_ms=1000)
    # The same page with no settle time asked, or a marker that moved long ago, is stored.
    assert pages.fill(GSI_PLAN, seen, b"page", TTL, settle_ms=0)
    old = client.get(GSI_MARKER)
    client.set(GSI_MARKER, old[:41] + b"0000000001000", ex=TTL)  # moved at epoch + 1 s
    assert pages.fill(GSI_PLAN, pages.read(GSI_PLAN), b"settled", TTL, settle_ms=1000)
    assert pages.read(GSI_PLAN).payload == b"settled"


def test_an_evicted_marker_never_revives_an_old_page(client: Any) -> None:
    pages = Pages(client)
    assert pages.fill(BASE_PLAN, pages.read(BASE_PLAN), b"first", TTL, settle_ms=0)
    created = client.get(MARKER)
    move(client, MARKER, 500)
    client.delete(MARKER)  # evicted (maxmemory) or expired
    # A new fill creates a marker unlike any before: the first page stays dead.
    other = QueryPlan(BASE, MARKER, result_key(MARKER, "other"), global_index=False)
    assert pages.fill(other, pages.read(other), b"second", TTL, settle_ms=0)
    assert client.get(MARKER) != created
    assert pages.read(BASE_PLAN).payload is None
    assert pages.read(other).payload == b"second"


def test_the_marker_outlives_its_pages(client: Any) -> None:
    pages = Pages(client)
    move(client, MARKER, 600)
    client.expire(MARKER, 5)
    assert pages.fill(BASE_PLAN, pages.read(BASE_PLAN), b"page", TTL, settle_ms=0)
    assert client.ttl(MARKER) >= client.ttl(BASE_PLAN.result)
