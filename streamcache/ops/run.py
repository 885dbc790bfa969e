"""``check`` and ``warm`` as commands: settings from the environment, output, exit codes.

Redis from ``REDIS_URL`` (and the other Redis settings, as the invalidator
reads them), DynamoDB from ``DYNAMODB_ENDPOINT_URL`` or AWS. Exit codes: 0
done (``check``: every sampled key consistent), 1 ``check`` found keys still
inconsistent, 2 bad usage (a missing table, a bad setting, Redis or DynamoDB
unreachable): one line on stderr, raised here as ``StreamCacheError``.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TextIO

from redis.exceptions import RedisError

from streamcache.errors import StreamCacheError
from streamcache.ops.verdict import nines_text
from streamcache.ops.warm import WarmReport
from streamcache.settings import Settings

Say = Callable[[str], None]


@contextmanager
def _one_line_errors() -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except RedisError as err:
        raise StreamCacheError(f"Redis: {type(err).__name__}: {err} (check REDIS_URL)") from err
    except (BotoCoreError, ClientError) as err:
        raise StreamCacheError(f"DynamoDB: {err}") from err


def _clients(settings: Settings) -> tuple[Any, Any]:
    from streamcache.aws import client
    from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client

    return client("dynamodb", settings.dynamodb_endpoint_url), redis_client(settings, INVALIDATOR_TIMEOUTS)


def check_command(table: str, sample: int, settle_seconds: float, repair: bool, say: Say = print) -> int:
    from streamcache.ops.check import Check, sample_keys
    from streamcache.ops.dynamo import ConsistentReader, describe_keys
    from streamcache.ops.keyspace import key_pattern

    settings = Settings.from_env()
    with _one_line_errors():
        dynamodb, cache = _clients(settings)
        keys = describe_keys(dynamodb, table)
        pattern = key_pattern(table, settings.key_prefix)
        names = sample_keys(cache, pattern, sample, random.Random())
        reader = ConsistentReader(dynamodb, table, keys, settings.key_prefix)
        check = Check(cache, reader, settings.cache_ttl_seconds, settings.apply_options)
        result = check.run(names, settle_seconds, repair)
    for name in result.inconsistent:
        say(name)
    bad = len(result.inconsistent)
    summary = (
        f"checked {result.checked} cached key(s) of {table!r}: {result.consistent} consistent, "
        f"{bad} inconsistent, nines {nines_text(result.checked, bad)}"
    )
    say(summary + (f"; {result.repaired} invalidated (--repair)" if repair else ""))
    return 1 if bad else 0


def warm_command(
    table: str,
    segments: int,
    limit: int | None,
    max_rcu: float | None,
    *,
    say: Say = print,
    progress: TextIO | None = None,
) -> int:
    from streamcache.ops.dynamo import Budget, ScanTable, describe_keys
    from streamcache.ops.warm import RateLimit, Target, Warmer
    from streamcache.read.lookup import ReaderCache

    settings = Settings.from_env()
    started = time.monotonic()
    with _one_line_errors():
        dynamodb, cache = _clients(settings)
        keys = describe_keys(dynamodb, table)
        rate = RateLimit(max_rcu)
        scan = ScanTable(dynamodb, table, keys, rate=rate, budget=Budget(limit))
        target = Target(
            table,
            keys.names,
            settings.cache_ttl_seconds,
            settings.negative_cache_ttl_seconds,
            settings.key_prefix,
        )
        warmer = Warmer(ReaderCache(cache), target)
        total = _warm_segments(warmer, scan, segments, _Progress(progress or sys.stderr))
    seconds = time.monotonic() - started
    say(
        f"warmed {table!r} in {seconds:.1f} s: scanned {total.scanned}, filled {total.filled}, "
        f"already cached {total.cached}, leased by a reader {total.busy}, "
        f"raced by a write {total.raced} (left for the next read)"
    )
    return 0


class _Progress:
    """Counts on stderr, at most once a second, and once at the end."""

    def __init__(self, out: TextIO, every_s: float = 1.0) -> None:
        self._out, self._every, self._last = out, every_s, time.monotonic()

    def show(self, total: WarmReport, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - self._last >= self._every:
            self._last = now
            print(f"warm: scanned {total.scanned}, filled {total.filled}", file=self._out, flush=True)


def _warm_segments(warmer: Any, scan: Any, segments: int, progress: _Progress) -> WarmReport:
    total = WarmReport()
    lock = threading.Lock()

    def segment(index: int) -> None:
        for page in scan.pages(index, segments):
            report = warmer.warm_page(page, scan)
            with lock:
                total.add(report)
                progress.show(total)

    with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="warm") as pool:
        list(pool.map(segment, range(segments)))  # re-raises a segment's error here
    progress.show(total, final=True)
    return total
