"""One exception root for the package, with specific subclasses.

Messages say what was wrong, with which value (never item contents or
secrets), and what to do about it.
"""

from __future__ import annotations

from redis.exceptions import TimeoutError as RedisTimeoutError


class StreamCacheError(Exception):
    """Root of every error raised on purpose by streamcache."""


class ConfigError(StreamCacheError):
    """A missing or malformed setting; raised once, at init."""


class MalformedEventError(StreamCacheError):
    """The Lambda event is not a DynamoDB Streams event at all.

    Raised by the invalidator so that the whole invocation fails and Lambda
    retries (or bisects) the batch: nothing is lost.
    """


class RecordError(StreamCacheError):
    """One stream record has no usable cache key (bad ARN, missing key attribute...)."""


class KeyValueError(StreamCacheError):
    """A key attribute value cannot be encoded (wrong type, not a number, too long)."""


class UnknownTableError(StreamCacheError):
    """No key schema is known for a table (not in KEY_SCHEMA, DescribeTable failed).

    ``problem`` says what went wrong, ``fix`` what to do (the exact KEY_SCHEMA entry when known).
    """

    def __init__(self, problem: str, fix: str = "add it to KEY_SCHEMA") -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix


class KeySchemaMismatchError(UnknownTableError):
    """KEY_SCHEMA disagrees with the table (or with a record's ``Keys``): a configuration error.

    Never served around: the reader and the invalidator would spell one item's
    key differently and the cache would stay stale while both report success.
    An ``UnknownTableError`` (no key schema to trust), so code that handles
    only that still refuses the table.
    """

    def __init__(
        self,
        table: str,
        problem: str,
        fix: str = "fix KEY_SCHEMA, or remove the table from it to have the table described",
    ) -> None:
        super().__init__(problem, fix)
        self.table = table


class ReplicaAckError(StreamCacheError, RedisTimeoutError):
    """Fewer replicas than REDIS_MIN_REPLICA_ACKS confirmed a write within the timeout.

    The primary applied it, but a failover now could lose it: it counts as not
    applied, and Lambda re-delivers it (harmless: writes are versioned). A
    Redis ``TimeoutError``, so the invalidator treats it like an unreachable
    node (report, retry later), not like a refused write.
    """


class UnprocessedKeysError(StreamCacheError):
    """DynamoDB left keys of a ``BatchGetItem`` unprocessed after every retry (throttled).

    Nothing is answered rather than a partial list: the caller may retry the
    whole batch, or raise the table's read capacity.
    """

    def __init__(self, table: str, pending: int, attempts: int) -> None:
        super().__init__(
            f"BatchGetItem on table {table!r} left {pending} key(s) unprocessed after {attempts} attempts "
            "(throttled: retry later or raise the table's read capacity)"
        )
        self.table = table
        self.pending = pending
        self.attempts = attempts
