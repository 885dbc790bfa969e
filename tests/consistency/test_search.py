"""The property search can fail: against the protocol's old bugs it finds a counterexample by itself.

``race_worlds`` (test_schedules) runs here against a broken protocol, loaded
in this process only (``protocol.lua_source`` is patched; the files in
streamcache/lua are never touched), and against broken clocks:

- the original apply.lua (commit 2e8c72b): it turned a reader fill F into an
  invalidation X when a record arrived, but let the next record write its
  image over that X, stepping the cache back from the fill's newer state;
- today's apply.lua, with the model's DynamoDB clock running ahead of Redis's
  by more than FILL_CLOCK_MARGIN_MS: records written before a fill's read pass
  for later ones and write their images over it. Within the margin the same
  search passes (test_schedules draws skews up to it).

The versions' fixed-width string comparison (Lua numbers are doubles) is
pinned by behaviour in test_regressions (adjacent 40-digit versions).

Each search is derandomized and bounded; it stops at the first counterexample
(no shrinking: the point is that the search fails, not the minimal example).
"""

from __future__ import annotations

import pytest
import redis
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from consistency.test_schedules import SEARCH, race_worlds, race_worlds_with, run_world
from consistency.world import FILL_MARGIN_MS, Stats
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
redis.call("SET", KEYS[1], ARGV[3], "EX", ARGV[4])
return 1
"""  # ARGV[3] is now the whole entry (kind .. version .. payload), built by the client
# DynamoDB's clock this far ahead of Redis's, against a 2 ms margin: a record written
# before a fill's read passes for one written after it (for up to a second).
SKEW_BEYOND_MS = 1000


def run_search(cache: redis.Redis, worlds: st.SearchStrategy[dict] = race_worlds) -> tuple[int, str | None]:
    """The race search, derandomized: (examples run up to the first failure, its message or None)."""
    examples, failure = 0, None

    @settings(SEARCH, max_examples=BUDGET, phases=[Phase.generate])
    @given(spec=worlds)
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


def test_property_search_finds_stale_images_when_clocks_skew_beyond_the_margin(cache: redis.Redis) -> None:
    # Today's apply.lua, unchanged; only the model's clocks move: DynamoDB's runs a second
    # ahead of Redis's, far beyond the 2 ms FILL_CLOCK_MARGIN_MS the world runs with.
    beyond = race_worlds_with(st.just((SKEW_BEYOND_MS, FILL_MARGIN_MS)))
    found_after, failure = run_search(cache, beyond)
    assert failure is not None, f"{found_after} examples with clocks a second apart found nothing"
    print(f"clock skew {SKEW_BEYOND_MS} ms > margin {FILL_MARGIN_MS} ms: counterexample after {found_after}")
    # An image written before a fill's read, stamped late, was taken as newer than the fill.
    assert "went back to state" in failure, failure
    assert "(filled)" in failure, failure


def test_the_same_search_passes_with_todays_protocol(cache: redis.Redis) -> None:
    # The same derandomized examples with the real apply.lua: the failures above are the old bugs.
    examples, failure = run_search(cache)
    assert failure is None, failure
    assert examples == BUDGET
