"""boto3 clients, imported lazily and made once per execution environment, and the invocation's deadline.

The invalidator never imports this module's boto3 unless a table is missing
from KEY_SCHEMA or an AUTH secret must be read; import cost matters there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from streamcache.errors import ConfigError

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class AwsTimeouts:
    """One client's budget; ``worst_s`` is the longest a call can take, retries included."""

    connect_s: float
    read_s: float
    attempts: int

    @property
    def worst_s(self) -> float:
        # Each attempt may wait out both timeouts; standard retries back off up to 1 s between attempts.
        return self.attempts * (self.connect_s + self.read_s) + (self.attempts - 1)


DEFAULT_TIMEOUTS = AwsTimeouts(connect_s=2, read_s=5, attempts=4)  # total attempts: 1 + 3 retries


@lru_cache(maxsize=8)
def client(service: str, endpoint_url: str | None = None, timeouts: AwsTimeouts = DEFAULT_TIMEOUTS) -> Any:
    import boto3  # lazy: ~170 ms of cold start
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(
        connect_timeout=timeouts.connect_s,
        read_timeout=timeouts.read_s,
        retries={"total_max_attempts": timeouts.attempts, "mode": "standard"},
    )
    try:
        return boto3.client(service, endpoint_url=endpoint_url, region_name=region(), config=config)
    except NoRegionError as err:
        raise ConfigError(
            f"no AWS region for the {service} client: set AWS_REGION or AWS_DEFAULT_REGION "
            "(Lambda sets AWS_REGION itself)"
        ) from err


def region() -> str | None:
    """AWS_REGION, else AWS_DEFAULT_REGION: botocore alone reads only the latter (and its config files)."""
    for name in REGION_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


# -- the invocation's deadline -------------------------------------------------

_time_left: ContextVar[Callable[[], float] | None] = ContextVar("streamcache_time_left", default=None)


class invocation:  # lowercase: used like a function, ``with aws.invocation(context):``
    """Bound AWS calls made inside by the Lambda context's remaining time (no context: unbounded).

    A class rather than a ``@contextmanager`` generator: it wraps every reader hit,
    and costs a third as much.
    """

    __slots__ = ("_context", "_token")

    def __init__(self, context: Any) -> None:
        self._context = context

    def __enter__(self) -> None:
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        self._token = _time_left.set(None if remaining is None else lambda: remaining() / 1000.0)

    def __exit__(self, *exc: object) -> None:
        _time_left.reset(self._token)


def time_left() -> float:
    """Seconds left in the current invocation; infinite outside one."""
    remaining = _time_left.get()
    if remaining is None:
        return math.inf
    try:
        return float(remaining())
    except Exception:  # a context without a usable clock: do not bound by it
        return math.inf
