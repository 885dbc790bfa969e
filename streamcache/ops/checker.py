"""The consistency checker: pop due samples, read their keys, count, report, repair.

Runs in the checker Lambda on a schedule (``checker/handler.py``) and in
``make demo``. Every run first arms the sample set (a marker member at +inf
and an expiry): the invalidator adds samples only to an armed set, so when
no checker runs for ``ARM_SECONDS`` the set expires and sampling stops.

Samples are claimed with ``ZREM`` (only the caller whose ``ZREM`` removed a
member checks it), so overlapping runs never count a sample twice. A sample
checked at a delay that is not the last goes back in the set, due at the next
delay: a key behind at the first check and right at the last was slow; behind
at the last, wrong (``Inconsistent``, alarmed). Repair writes a versioned
invalidation (``X`` at the sample's version through apply.lua): it is skipped
if the key already holds a newer version, so it can never hide a newer write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamcache import entry
from streamcache.ops.sampling import Sample, SamplingConfig
from streamcache.ops.verdict import Verdict, judge
from streamcache.protocol import APPLIED, INVALIDATED, Scripts, apply_commands
from streamcache.records import Command
from streamcache.settings import ApplyOptions

MARKER = b"armed"  # not a sample: Sample.decode ignores it
ARM_SECONDS = 900  # a checker that stopped this long ago no longer receives samples
POP_BATCH = 500
MAX_PER_RUN = 20_000  # a run stops after this many samples: the rest wait for the next run


@dataclass(frozen=True, slots=True)
class Finding:
    sample: Sample
    verdict: Verdict
    delay_s: int


@dataclass
class Report:
    """What one run found, per delay (index = stage)."""

    delays_s: tuple[int, ...]
    checked: list[int] = field(default_factory=list)
    inconsistent: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    repaired: int = 0

    def __post_init__(self) -> None:
        self.checked = [0] * len(self.delays_s)
        self.inconsistent = [0] * len(self.delays_s)

    def add(self, other: Report) -> None:
        self.checked = [a + b for a, b in zip(self.checked, other.checked, strict=True)]
        self.inconsistent = [a + b for a, b in zip(self.inconsistent, other.inconsistent, strict=True)]
        self.findings += other.findings
        self.repaired += other.repaired

    @property
    def final_checked(self) -> int:
        return self.checked[-1]

    @property
    def final_inconsistent(self) -> int:
        return self.inconsistent[-1]

    @property
    def early_checked(self) -> int:
        return sum(self.checked[:-1])

    @property
    def early_inconsistent(self) -> int:
        return sum(self.inconsistent[:-1])


@dataclass(frozen=True)
class RepairOptions:
    ttl_seconds: int
    apply_options: ApplyOptions = field(default_factory=ApplyOptions)


class Checker:
    def __init__(
        self,
        client: Any,
        config: SamplingConfig,
        repair: RepairOptions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._config = config
        self._key = config.samples_key
        self._repair = repair
        self._clock = clock
        self._scripts = Scripts.register(client) if repair is not None else None

    def arm(self) -> None:
        """Let the invalidator add samples for the next ``ARM_SECONDS``."""
        pipe = self._client.pipeline(transaction=False)
        pipe.zadd(self._key, {MARKER: float("inf")})
        pipe.expire(self._key, ARM_SECONDS)
        pipe.execute()

    def disarm(self) -> None:
        self._client.delete(self._key)

    def run(self, max_samples: int = MAX_PER_RUN) -> Report:
        """Arm, then check every sample due now (up to ``max_samples``)."""
        self.arm()
        report = Report(self._config.delays_s)
        while sum(report.checked) < max_samples:
            samples = self._pop_due(min(POP_BATCH, max_samples - sum(report.checked)))
            if not samples:
                break
            self._check(samples, report)
        return report

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _pop_due(self, count: int) -> list[Sample]:
        members = self._client.zrangebyscore(self._key, "-inf", self._now_ms(), start=0, num=count)
        if not members:
            return []
        pipe = self._client.pipeline(transaction=False)
        for member in members:
            pipe.zrem(self._key, member)
        claimed = [m for m, removed in zip(members, pipe.execute(), strict=True) if removed]
        return [s for s in map(Sample.decode, claimed) if s is not None]

    def _check(self, samples: list[Sample], report: Report) -> None:
        pipe = self._client.pipeline(transaction=False)
        for sample in samples:
            pipe.get(sample.key)
        wrong: list[Sample] = []
        later: dict[bytes, int] = {}
        last = len(self._config.delays_s) - 1
        for sample, raw in zip(samples, pipe.execute(), strict=True):
            stage = min(sample.stage, last)
            verdict = judge(sample, raw)
            report.checked[stage] += 1
            if not verdict.consistent:
                report.inconsistent[stage] += 1
                report.findings.append(Finding(sample, verdict, self._config.delays_s[stage]))
                wrong += [sample] if stage == last else []
            if stage < last:
                later[_next(sample).encode()] = self._due_after(stage)
        if later:
            self._client.zadd(self._key, later)
        report.repaired += self._repair_keys(wrong)

    def _due_after(self, stage: int) -> int:
        delays = self._config.delays_s
        return self._now_ms() + (delays[stage + 1] - delays[stage]) * 1000

    def _repair_keys(self, samples: list[Sample]) -> int:
        if self._repair is None or self._scripts is None or not samples:
            return 0
        commands = [Command(s.key, entry.INVALIDATED, s.version, b"", "consistency repair") for s in samples]
        repair = self._repair
        outcomes = apply_commands(
            self._client, self._scripts.apply, commands, repair.ttl_seconds, **repair.apply_options
        )
        return sum(o in (APPLIED, INVALIDATED) for o in outcomes if not isinstance(o, Exception))


def _next(sample: Sample) -> Sample:
    return Sample(sample.key, sample.version, sample.created_ms, sample.stage + 1)


class Background:
    """``Checker.run`` every ``every_s`` in a thread, for a local loop (``make demo``).

    ``stop`` waits out the last delay so every sample taken so far is checked,
    then returns the total over all runs.
    """

    def __init__(self, checker: Checker, delays_s: tuple[int, ...], every_s: float = 0.2) -> None:
        self._checker = checker
        self._wait_s = delays_s[-1] + every_s
        self._every_s = every_s
        self.total = Report(delays_s)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="consistency-checker", daemon=True)

    def start(self) -> Background:
        self._checker.arm()
        self._thread.start()
        return self

    def stop(self) -> Report:
        time.sleep(self._wait_s)
        self._stopping.set()
        self._thread.join()
        self._add(self._checker.run())
        self._checker.disarm()
        return self.total

    def _loop(self) -> None:
        while not self._stopping.wait(self._every_s):
            self._add(self._checker.run())

    def _add(self, report: Report) -> None:
        self.total.add(report)
