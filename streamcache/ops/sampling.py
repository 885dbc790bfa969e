"""Consistency sampling: the invalidator hands a sample of its records to the checker.

A sample is (cache key, the record's version, its creation time, which check
is next). The invalidator adds sampled records to one Redis sorted set (score:
when the check is due) after it applied its batch; the checker Lambda, on a
schedule, pops the due samples and reads their keys (``streamcache.ops.checker``).
Why Redis and not SQS: the invalidator runs in a VPC with no route to SQS and
never imports boto3 (cold start), and an SQS interface endpoint costs more
than the feature; the sorted set costs one round trip per batch that drew a
sample, and only while a checker has armed the set (see sample.lua).

Light on purpose: the invalidator imports this module; no boto3, no Powertools.
"""

from __future__ import annotations

import logging
import os
import random
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamcache.errors import ConfigError
from streamcache.records import Command

CONSISTENCY_SAMPLE_RATE = "CONSISTENCY_SAMPLE_RATE"
CONSISTENCY_CHECK_DELAYS = "CONSISTENCY_CHECK_DELAYS"
CACHE_KEY_PREFIX = "CACHE_KEY_PREFIX"

DEFAULT_RATE = 0.01
# Two checks tell "slow" from "wrong": a key that is behind at the first check but
# right at the last was slow (a record still being retried); behind at the last is wrong.
DEFAULT_DELAYS_S = (10, 60)
# The set never holds more than this many samples (about 4 MB); the earliest due go first.
MAX_SAMPLES = 50_000
# After finding the set unarmed (no checker), the invalidator stops asking for this long.
UNARMED_REST_S = 60.0
# A colon never appears in a DynamoDB table name, so this can never be a cache key.
SAMPLES_SUFFIX = "streamcache:consistency-samples"

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingConfig:
    rate: float = DEFAULT_RATE
    delays_s: tuple[int, ...] = DEFAULT_DELAYS_S
    key_prefix: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SamplingConfig:
        env = os.environ if env is None else env
        return cls(
            rate=parse_rate(env.get(CONSISTENCY_SAMPLE_RATE, "")),
            delays_s=parse_delays(env.get(CONSISTENCY_CHECK_DELAYS, "")),
            key_prefix=env.get(CACHE_KEY_PREFIX, ""),
        )

    @property
    def samples_key(self) -> str:
        return samples_key(self.key_prefix)


def samples_key(prefix: str = "") -> str:
    return prefix + SAMPLES_SUFFIX


def parse_rate(raw: str) -> float:
    if not raw.strip():
        return DEFAULT_RATE
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{CONSISTENCY_SAMPLE_RATE}={raw!r} is not a fraction from 0 to 1 (e.g. 0.01)")
    return rate


def parse_delays(raw: str) -> tuple[int, ...]:
    if not raw.strip():
        return DEFAULT_DELAYS_S
    parts = [p.strip() for p in raw.split(",")]
    if not all(p.isdigit() for p in parts) or [int(p) for p in parts] != sorted({int(p) for p in parts}):
        raise ConfigError(
            f"{CONSISTENCY_CHECK_DELAYS}={raw!r} is not increasing whole seconds, "
            "comma-separated (e.g. 10,60)"
        )
    return tuple(int(p) for p in parts)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled record: the key must reflect ``version`` (or newer) at each check."""

    key: str
    version: str  # 40-digit padded SequenceNumber
    created_ms: int  # the record's creation time, epoch ms (0: unknown)
    stage: int = 0  # index into the delays: which check this is

    def encode(self) -> bytes:
        return orjson.dumps([self.key, self.version, self.created_ms, self.stage])

    @classmethod
    def decode(cls, raw: bytes | str) -> Sample | None:
        """None for anything that is not a sample (the checker's marker, a foreign member)."""
        try:
            key, version, created_ms, stage = orjson.loads(raw)
            return cls(str(key), str(version), int(created_ms), int(stage))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None


class Sampler:
    """Draws samples from applied commands and adds them to the set (one call per batch)."""

    def __init__(
        self,
        config: SamplingConfig,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._draw = draw
        self._clock = clock
        self._scripts: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._unarmed_until = 0.0  # no checker seen: skip the round trip until then

    def pick(self, commands: Iterable[Command]) -> list[Sample]:
        rate = self.config.rate
        if not rate:
            return []
        return [Sample(c.key, c.version, c.created_ms) for c in commands if self._draw() < rate]

    def add(self, client: Any, samples: list[Sample]) -> int:
        """Add ``samples`` due after the first delay; 0 when no checker armed the set.

        Finding the set unarmed, the sampler rests ``UNARMED_REST_S``: a
        deployment without a checker pays one round trip a minute, not one a batch.
        """
        now = self._clock()
        if not samples or now < self._unarmed_until:
            return 0
        due_ms = int(now * 1000) + self.config.delays_s[0] * 1000
        args: list[Any] = [MAX_SAMPLES]
        for sample in samples:
            args += [due_ms, sample.encode()]
        added = int(self._script(client)(keys=[self.config.samples_key], args=args))
        if added < 0:
            self._unarmed_until = now + UNARMED_REST_S
            return 0
        return added

    def offer(self, client: Any, commands: Iterable[Command], outcomes: Mapping[str, object]) -> int:
        """The invalidator's hook: sample this batch's commands. Never raises, never fails a batch.

        A batch that found Redis unreachable adds nothing: the set lives on the
        same Redis, and waiting on it again would only slow the retry down.
        """
        samples = self.pick(commands)  # most batches draw none: nothing else to do
        if not samples or any(isinstance(o, _UNREACHABLE) for o in outcomes.values()):
            return 0
        try:
            return self.add(client, samples)
        except RedisError as err:  # a lost sample costs a figure, never a record
            _log.debug("consistency samples not added: %s", type(err).__name__)
            return 0

    def _script(self, client: Any) -> Any:
        script = self._scripts.get(client)
        if script is None:
            source = Path(__file__).with_name("sample.lua").read_text(encoding="utf-8")
            script = self._scripts[client] = client.register_script(source)
        return script


_sampler: Sampler | None = None


def sampler() -> Sampler:
    """The execution environment's sampler, configured from the environment once."""
    global _sampler
    if _sampler is None:
        _sampler = Sampler(SamplingConfig.from_env())
    return _sampler


def configure(new: Sampler | None) -> None:
    """Replace the sampler (tests, the demo); None: build it from the environment again."""
    global _sampler
    _sampler = new


def offer(client: Any, commands: Iterable[Command], outcomes: Mapping[str, object]) -> int:
    """``Sampler.offer`` on the environment's sampler (the one line the invalidator calls)."""
    return sampler().offer(client, commands, outcomes)
