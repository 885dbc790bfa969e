"""What a reader execution environment makes once: settings, clients, schemas, breaker.

Built lazily on the first call (so importing the handler stays cheap and a
bad setting fails the first invocation with one clear line), kept for every
later call, and forgotten by ``reset()`` in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from reader import observe
from reader.cacheaside import CacheAside, Expiry, Result
from reader.request import RequestError
from reader.tracing import cache_port, table_port
from streamcache.aws import client as aws_client
from streamcache.circuit import CircuitBreaker
from streamcache.codec import Typed
from streamcache.connection import READER_TIMEOUTS, redis_client_or_deferred
from streamcache.errors import KeySchemaMismatchError, UnknownTableError
from streamcache.keys import cache_key
from streamcache.schema import KeySchemas, TableKeys, describe_with_boto3
from streamcache.settings import Settings

# Three consecutive Redis errors open the breaker; then one probe every 5 s.
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN_S = 5.0


class UnavailableError(RequestError):
    """DescribeTable or GetItem failed: logged with the exception, answered 503."""


@dataclass
class Runtime:
    settings: Settings
    schemas: KeySchemas
    reads: CacheAside

    def schema_of(self, table: str) -> TableKeys:
        """The table's key names and types (DescribeTable once per table per environment)."""
        try:
            return self.schemas.typed_keys_of(table)
        except KeySchemaMismatchError as err:  # loud, never stale: 503 + ERROR log + KeySchemaMismatch
            observe.key_schema_mismatch()
            raise UnavailableError(503, str(err)) from err
        except UnknownTableError as err:
            raise UnavailableError(503, f"cannot read the key schema of table {table!r}") from err

    def read(self, table: str, schema: TableKeys, key: Typed) -> Result:
        key_text = cache_key(table, key, schema.names, self.settings.key_prefix)
        try:
            return self.reads.lookup(table, key, key_text)
        except (BotoCoreError, ClientError) as err:
            code = err.response["Error"]["Code"] if isinstance(err, ClientError) else type(err).__name__
            raise UnavailableError(503, f"DynamoDB GetItem on table {table!r} failed ({code})") from err


def build(settings: Settings) -> Runtime:
    redis = redis_client_or_deferred(settings, READER_TIMEOUTS)
    dynamodb = aws_client("dynamodb", settings.dynamodb_endpoint_url)
    schemas = KeySchemas(settings.key_schema, describe_with_boto3(settings.dynamodb_endpoint_url))
    reads = CacheAside(
        cache_port(redis),
        table_port(dynamodb),
        CircuitBreaker(BREAKER_THRESHOLD, BREAKER_COOLDOWN_S),
        Expiry(settings.cache_ttl_seconds, settings.negative_cache_ttl_seconds),
    )
    return Runtime(settings, schemas, reads)


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = build(Settings.from_env())
    return _runtime


def reset() -> None:
    """Forget the runtime (tests, or after changing the environment)."""
    global _runtime
    _runtime = None
