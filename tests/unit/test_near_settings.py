"""The near cache's settings: defaults, off switch, and one clear error per bad value."""

from __future__ import annotations

import pytest

from streamcache.errors import ConfigError
from streamcache.read.near import near_cache_for
from streamcache.settings import Settings

URL = {"REDIS_URL": "redis://127.0.0.1:1/0"}


def test_defaults_turn_the_near_cache_on_with_a_100_ms_bound() -> None:
    settings = Settings.from_env(URL)
    assert settings.near_cache_items == 10_000
    assert settings.near_cache_max_staleness_ms == 100
    assert settings.near_cache_max_bytes == 32 * 1024 * 1024


def test_zero_items_turns_it_off() -> None:
    settings = Settings.from_env({**URL, "NEAR_CACHE_ITEMS": "0"})
    assert near_cache_for(object(), settings) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("NEAR_CACHE_ITEMS", "-1"), ("NEAR_CACHE_MAX_STALENESS_MS", "0"), ("NEAR_CACHE_MAX_BYTES", "lots")],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**URL, name: value})


def test_an_explicit_cache_can_turn_the_near_cache_off() -> None:
    from streamcache.read.cache import Cache

    assert Cache(URL["REDIS_URL"], near_cache_items=0).near is None
    assert Cache(URL["REDIS_URL"]).near is not None
