"""The checker's verdict rules and the sampling settings (pure)."""

from __future__ import annotations

import pytest

from streamcache import entry
from streamcache.errors import ConfigError
from streamcache.ops.sampling import Sample, SamplingConfig, parse_delays, parse_rate
from streamcache.ops.verdict import judge, nines, nines_text

V = str(200).zfill(40)
SAMPLE = Sample("t-a", V, created_ms=1_700_000_000_000)


def value(kind: bytes, version: int, rest: bytes = b"") -> bytes:
    return kind + str(version).zfill(40).encode() + rest


@pytest.mark.parametrize(
    ("raw", "held"),
    [
        (None, "nothing"),
        (value(entry.ITEM, 200, b"{}"), "I@200"),
        (value(entry.TOMBSTONE, 300), "T@300"),
        (value(entry.INVALIDATED, 100), "X@100"),  # a miss: readers go to DynamoDB
        (value(entry.LEASE, 100, b"abcd"), "L@100"),
        (value(entry.FILL, 0, b"1700000000000{}"), "F@0/fill_ms=1700000000000"),  # refill after a flush
        (b"garbage", "X@0"),  # unreadable: readers treat it as a miss
    ],
)
def test_consistent_entries(raw: bytes | None, held: str) -> None:
    verdict = judge(SAMPLE, raw)
    assert verdict.consistent and verdict.held == held


@pytest.mark.parametrize(
    ("raw", "held"),
    [
        (value(entry.ITEM, 199, b'{"secret":{"S":"x"}}'), "I@199"),  # the record's write was lost
        (value(entry.TOMBSTONE, 100), "T@100"),
        (value(entry.FILL, 100, b"1699999999999{}"), "F@100/fill_ms=1699999999999"),  # read before the write
    ],
)
def test_older_answers_are_inconsistent_and_never_show_the_item(raw: bytes, held: str) -> None:
    verdict = judge(SAMPLE, raw)
    assert not verdict.consistent and verdict.held == held and "secret" not in verdict.held


def test_a_fill_is_not_excused_when_the_creation_time_is_unknown() -> None:
    assert not judge(Sample("t-a", V, created_ms=0), value(entry.FILL, 100, b"1700000000000{}")).consistent


def test_nines() -> None:
    assert nines(1000, 1) == pytest.approx(3.0)
    assert nines_text(1000, 1) == "3.0"
    assert nines_text(1000, 0) == ">= 3.0"
    assert nines(0, 0) == 0.0
    assert nines_text(0, 0).startswith("n/a")
    assert nines_text(1, 1) == "0.0"


def test_sample_round_trip_and_foreign_members() -> None:
    sample = Sample("t-a-%2D", V, 5, stage=1)
    assert Sample.decode(sample.encode()) == sample
    assert Sample.decode(b"armed") is None


@pytest.mark.parametrize("raw", ["-0.1", "1.5", "often", "nan"])
def test_bad_rate_names_the_value(raw: str) -> None:
    with pytest.raises(ConfigError, match=f"CONSISTENCY_SAMPLE_RATE='{raw}'"):
        parse_rate(raw)


@pytest.mark.parametrize("raw", ["60,10", "10,10", "ten", "10,-1"])
def test_bad_delays_name_the_value(raw: str) -> None:
    with pytest.raises(ConfigError, match="CONSISTENCY_CHECK_DELAYS"):
        parse_delays(raw)


def test_defaults_and_prefix() -> None:
    config = SamplingConfig.from_env({"CACHE_KEY_PREFIX": "p:"})
    assert (config.rate, config.delays_s) == (0.01, (10, 60))
    assert config.samples_key == "p:streamcache:consistency-samples"
    env = {"CONSISTENCY_SAMPLE_RATE": "0", "CONSISTENCY_CHECK_DELAYS": "1"}
    assert SamplingConfig.from_env(env).delays_s == (1,)
