"""``Cache``: settings from the environment or explicit arguments; one shared default per process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamcache import Cache, CachedTable
from streamcache.errors import ConfigError
from streamcache.read.cache import reset_default_cache

KEY = {"pk": {"S": "u1"}, "sk": {"N": "42"}}


@pytest.fixture(autouse=True)
def fresh_default() -> Iterator[None]:
    reset_default_cache()
    yield
    reset_default_cache()


def test_settings_come_from_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CACHE_KEY_PREFIX", "env:")
    monkeypatch.setenv("NEGATIVE_CACHE_TTL_SECONDS", "7")
    cache = Cache()
    assert cache.key("orders", KEY, ("pk", "sk")) == "env:orders-u1-42"
    assert cache.expiry.not_found_s == 7


def test_explicit_arguments_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_KEY_PREFIX", "env:")
    monkeypatch.setenv("CACHE_TTL_SECONDS", "9")
    cache = Cache("redis://127.0.0.1:1/0", key_prefix="mine:", negative_ttl_seconds=5)
    assert cache.key("orders", KEY, ("pk", "sk")) == "mine:orders-u1-42"
    assert (cache.expiry.found_s, cache.expiry.not_found_s) == (3600, 5)


def test_a_bad_url_is_one_clear_error_that_never_echoes_it() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL has scheme 'http'") as err:
        Cache("http://user:secret@host/0")
    assert "secret" not in str(err.value)


def test_no_redis_url_anywhere_says_which_setting_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match="REDIS_URL is required"):
        CachedTable(object())


def test_repr_never_shows_the_url() -> None:
    assert "secret" not in repr(Cache("redis://:secret@127.0.0.1:1/0"))


def test_tables_without_a_cache_share_the_process_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    first, second = CachedTable(object()), CachedTable(object())
    assert first.cache is second.cache
    assert CachedTable(object(), Cache("redis://127.0.0.1:1/0")).cache is not first.cache
