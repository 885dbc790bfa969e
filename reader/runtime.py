"""What a reader execution environment makes once: settings, clients, schemas, the cache.

The reads themselves are the library's (``streamcache.read``): one ``Cache``
(Redis client, breaker, counters) and cache-aside over a low-level DynamoDB
client; the reader adds only request checks and answer shapes. Built lazily
on the first call (so importing the handler stays cheap and a
bad setting fails the first invocation with one clear line), kept for every
later call, and forgotten by ``reset()`` in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from reader import observe
from reader.request import RequestError, key_from_json
from reader.tracing import cache_port, table_port
from streamcache.aws import client as aws_client
from streamcache.circuit import CircuitBreaker
from streamcache.codec import Typed
from streamcache.errors import KeySchemaMismatchError, UnknownTableError, UnprocessedKeysError
from streamcache.read.cache import Cache
from streamcache.read.cacheaside import CacheAside, Result
from streamcache.schema import KeySchemas, TableKeys, describe_with_boto3
from streamcache.settings import Settings

if TYPE_CHECKING:  # the query side loads boto3: only a query pays for it
    from streamcache.read.querying import QueryReads

# Three consecutive Redis errors open the breaker; then one probe every 5 s.
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN_S = 5.0
# Direct-invoke keys remembered with their cache keys (checking and encoding a
# key costs ~10 us, a cache hit ~50); past this many the memory starts again.
KEY_MEMO_SIZE = 4096


class UnavailableError(RequestError):
    """DescribeTable or GetItem failed: logged with the exception, answered 503."""


@dataclass
class Runtime:
    settings: Settings
    schemas: KeySchemas
    cache: Cache
    reads: CacheAside
    _keys: dict[tuple[Any, ...], tuple[Typed, str]] = field(default_factory=dict)
    _queries: dict[str, QueryReads] = field(default_factory=dict)

    def queries(self, table: str) -> QueryReads:
        """The query side of ``table`` (a boto3 Table resource, made on the first query)."""
        reads = self._queries.get(table)
        if reads is None:
            reads = self._queries[table] = query_reads(self.settings, self.cache, table)
        return reads

    def schema_of(self, table: str) -> TableKeys:
        """The table's key names and types (DescribeTable once per table per environment)."""
        try:
            return self.schemas.typed_keys_of(table)
        except KeySchemaMismatchError as err:  # loud, never stale: 503 + ERROR log + KeySchemaMismatch
            observe.key_schema_mismatch()
            raise UnavailableError(503, str(err)) from err
        except UnknownTableError as err:
            raise UnavailableError(503, f"cannot read the key schema of table {table!r}") from err

    def key_of(self, table: str, schema: TableKeys, raw: object) -> tuple[Typed, str]:
        """A direct invoke's ``key``, checked and typed (``key_from_json``), and its cache key.

        Remembered per exact value and type (``1``, ``1.0``, ``True`` and ``"1"``
        differ); mistakes are not remembered: they raise every time.
        """
        try:
            signature = (table, *raw.items(), *map(type, raw.values()))  # type: ignore[attr-defined]
            return self._keys[signature]
        except (AttributeError, TypeError):  # not an object, or typed values (dicts): not remembered
            return self._key_of(table, schema, raw)
        except KeyError:
            pass
        if len(self._keys) >= KEY_MEMO_SIZE:
            self._keys.clear()
        found = self._keys[signature] = self._key_of(table, schema, raw)
        return found

    def _key_of(self, table: str, schema: TableKeys, raw: object) -> tuple[Typed, str]:
        key = key_from_json(raw, schema)
        return key, self.cache.key(table, key, schema.names)

    def read(self, table: str, schema: TableKeys, key: Typed, key_text: str | None = None) -> Result:
        if key_text is None:
            key_text = self.cache.key(table, key, schema.names)
        try:
            return self.reads.lookup(table, key, key_text)
        except (BotoCoreError, ClientError) as err:
            raise _unavailable("GetItem", table, err) from err

    def read_many(self, table: str, schema: TableKeys, keys: Sequence[Typed]) -> list[Result]:
        """``read`` for every key, in order (one round trip per step, BatchGetItem for the misses)."""
        key_texts = [self.cache.key(table, key, schema.names) for key in keys]
        try:
            return self.reads.lookup_many(table, keys, key_texts)
        except (BotoCoreError, ClientError, UnprocessedKeysError) as err:
            raise _unavailable("BatchGetItem", table, err) from err


def _unavailable(operation: str, table: str, err: Exception) -> UnavailableError:
    code = err.response["Error"]["Code"] if isinstance(err, ClientError) else type(err).__name__
    return UnavailableError(503, f"DynamoDB {operation} on table {table!r} failed ({code})")


def query_reads(settings: Settings, cache: Cache, table: str) -> QueryReads:
    import boto3

    from streamcache.aws import region
    from streamcache.read.querying import QueryReads

    resource = boto3.resource("dynamodb", endpoint_url=settings.dynamodb_endpoint_url, region_name=region())
    return QueryReads(
        resource.Table(table),
        cache.pages,
        cache.breaker,
        enabled=table in settings.query_cache_tables,
        prefix=settings.key_prefix,
        ttl_seconds=settings.cache_ttl_seconds,
        settle_ms=settings.index_settle_ms,
    )


def build(settings: Settings) -> Runtime:
    dynamodb = aws_client("dynamodb", settings.dynamodb_endpoint_url)
    schemas = KeySchemas(settings.key_schema, describe_with_boto3(settings.dynamodb_endpoint_url))
    breaker = CircuitBreaker(BREAKER_THRESHOLD, BREAKER_COOLDOWN_S)
    cache = Cache(settings=settings, breaker=breaker, port=cache_port)
    return Runtime(settings, schemas, cache, cache.reads(table_port(dynamodb)))


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = build(Settings.from_env())
    return _runtime


def built() -> Runtime | None:
    """The runtime if a call has built it (metrics flush without building one)."""
    return _runtime


def reset() -> None:
    """Forget the runtime (tests, or after changing the environment)."""
    global _runtime
    _runtime = None
