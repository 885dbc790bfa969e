"""The property search can fail: against the protocol's old bugs it finds a counterexample by itself.

``race_worlds`` (test_schedules) runs here against three broken versions of
apply.lua, loaded in this process only (``protocol.lua_source`` is patched;
the files in streamcache/lua are never touched):

- the original apply.lua (commit 2e8c72b): it turned a reader fill F into an
  invalidation X when a record arrived, but let the next record write its
  image over that X, stepping the cache back from the fill's newer state;
- today's apply.lua with versions compared as Lua numbers (doubles): 40-digit
  sequence numbers a few apart compare equal, so newer records are skipped;
- today's apply.lua ignoring the records' creation times: every record writes
  its image over a reader fill (what ending fill mode by time must not become).

Each search is derandomized and bounded; it stops at the first counterexample
(no shrinking: the point is that the search fails, not the minimal example).
"""

from __future__ import annotations

import pytest
import redis
from hypothesis import Phase, given, settings

from consistency.test_schedules import SEARCH, race_worlds, run_world
from consistency.world import Stats
from streamcache import protocol

BUDGET = 300  # examples; the old fill bug needs far fewer (see found_after)

# git show 2e8c72b:streamcache/lua/apply.lua (header comment shortened)
OLD_APPLY = """\
-- apply.lua as of 2e8c72b: F becomes X, but a later record writes its image over that X.
local head = redis.call("GETRANGE", KEYS[1], 0, 40)
if #head == 41 then
  if ARGV[2] <= string.sub(head, 2, 41) then
    return 0
  end
  if string.sub(head, 1, 1) == "F" then
    redis.call("SET", KEYS[1], "X" .. ARGV[2], "EX", ARGV[4])
    return 2
  end
end
redis.call("SET", KEYS[1], ARGV[1] .. ARGV[2] .. ARGV[3], "EX", ARGV[4])
return 1
"""
STRING_COMPARISON = "if ARGV[2] <= string.sub(head, 2, 41) then"
NUMERIC_COMPARISON = "if tonumber(ARGV[2]) <= tonumber(string.sub(head, 2, 41)) then"


FILL_RULE = "if created_ms <= fill_ms + tonumber(ARGV[6]) then"


def timeless_apply() -> str:
    current = protocol.lua_source("apply")
    assert FILL_RULE in current, "apply.lua no longer ends fill mode this way: update this test"
    return current.replace(FILL_RULE, "if false then")


def numeric_apply() -> str:
    current = protocol.lua_source("apply")
    assert STRING_COMPARISON in current, "apply.lua no longer compares versions this way: update this test"
    return current.replace(STRING_COMPARISON, NUMERIC_COMPARISON)


def run_search(cache: redis.Redis) -> tuple[int, str | None]:
    """The race search, derandomized: (examples run up to the first failure, its message or None)."""
    examples, failure = 0, None

    @settings(SEARCH, max_examples=BUDGET, phases=[Phase.generate])
    @given(spec=race_worlds)
    def one_schedule(spec: dict) -> None:
        nonlocal examples, failure
        examples += failure is None  # hypothesis replays the failing example: count it once
        try:
            run_world(cache, Stats(), spec)
        except AssertionError as err:
            failure = failure or str(err)
            raise

    try:
        one_schedule()
    except AssertionError:
        assert failure is not None
    return examples, failure


def search_with(cache: redis.Redis, monkeypatch: pytest.MonkeyPatch, apply_source: str) -> tuple[int, str]:
    """The race search with ``apply_source`` as apply.lua (this process only): it must fail."""
    real = protocol.lua_source
    monkeypatch.setattr(protocol, "lua_source", lambda name: apply_source if name == "apply" else real(name))
    examples, failure = run_search(cache)
    assert failure is not None, f"{examples} examples against a broken apply.lua found nothing"
    return examples, failure


def test_property_search_finds_the_fill_regression_with_the_old_protocol(
    cache: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    found_after, failure = search_with(cache, monkeypatch, OLD_APPLY)
    print(f"old apply.lua: counterexample after {found_after} examples")
    # The bug class: a key went back from a reader fill's state to an older record's.
    assert "went back to state" in failure, failure
    assert "(filled)" in failure, failure


def test_property_search_finds_numeric_version_comparison(
    cache: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    found_after, failure = search_with(cache, monkeypatch, numeric_apply())
    print(f"numeric comparison: counterexample after {found_after} examples")
    # A newer record was skipped as "not newer": the cache kept (or served) an older state.
    assert "after draining" in failure or "had been applied" in failure or "went back" in failure, failure


def test_property_search_finds_images_written_over_fills_regardless_of_time(
    cache: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    found_after, failure = search_with(cache, monkeypatch, timeless_apply())
    print(f"apply.lua ignoring creation times: counterexample after {found_after} examples")
    assert "went back to state" in failure, failure
    assert "(filled)" in failure, failure


def test_the_same_search_passes_with_todays_protocol(cache: redis.Redis) -> None:
    # The same derandomized examples with the real apply.lua: the failures above are the old bugs.
    examples, failure = run_search(cache)
    assert failure is None, failure
    assert examples == BUDGET
