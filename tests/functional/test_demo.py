"""``make demo`` in-process with a small item count: the verification line and the exit code."""

from __future__ import annotations

import pytest

from streamcache.local.demo import DemoOptions, run_demo


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
    assert ("fakeredis" in text) == (redis_choice == "fakeredis")


def test_demo_fails_when_the_cache_disagrees_with_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a redrive that does nothing, the poison's key stays stale
    from streamcache.local import demo
    from streamcache.local.redrive import RedriveReport

    monkeypatch.setattr(demo, "_redrive", lambda *args: RedriveReport())
    monkeypatch.setattr(demo, "_read_twice", lambda *args: [])  # the reader would serve the stale entry
    lines: list[str] = []
    assert run_demo(DemoOptions(items=20, redis="redis-server"), say=lines.append) == 1
    assert any("verification           FAILED: 1 key(s)" in line for line in lines)
