"""``python -m streamcache invoke invalidator|reader --event FILE``: one function, one event, in process.

Like ``sam local invoke``: the answer is printed as JSON on stdout, what ran
against on stderr. Redis is ``REDIS_URL``, else a ``redis-server`` on a free
port, else fakeredis (as ``replay``). The reader's DynamoDB is
``DYNAMODB_ENDPOINT_URL`` (e.g. the one ``up`` prints), else an embedded moto
holding the key schema's tables, empty - so a read answers from DynamoDB with
"not found" unless the cache holds the key.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamcache.local.embedded import embedded_aws, local_redis, patched_environ
from streamcache.local.esm import LambdaContext
from streamcache.local.keyargs import local_key_schema
from streamcache.local.replay import QUIET_ENV, load_event, read_json
from streamcache.settings import ALLOWED_TABLES, DYNAMODB_ENDPOINT_URL, KEY_SCHEMA

FUNCTIONS = ("invalidator", "reader")
Say = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def invoke(
    function: str,
    path: Path,
    redis_choice: str = "auto",
    out: Say = print,
    say: Say = _stderr,
) -> int:
    """Run the function's handler on the event in ``path``; 0 once it answered."""
    event = load_event(path) if function == "invalidator" else read_json(path)
    schema = local_key_schema()
    with local_redis(redis_choice) as redis_:
        say(f"redis: {redis_.description}")
        env = {**QUIET_ENV, **_powertools_env(), "REDIS_URL": redis_.url}
        env[KEY_SCHEMA] = json.dumps({table: list(names) for table, names in schema.items()})
        if function == "invalidator":
            with patched_environ(env):
                answer = _call_invalidator(event)
        else:
            with _dynamodb(schema, event, say) as endpoint, patched_environ({**env, **endpoint}):
                env_tables = os.environ.get(ALLOWED_TABLES)
                with patched_environ({ALLOWED_TABLES: env_tables or _tables_of(schema, event)}):
                    answer = _call_reader(event)
    out(json.dumps(answer, indent=2, sort_keys=True))
    return 0


def _powertools_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("POWERTOOLS_")}


def _tables_of(schema: Mapping[str, tuple[str, ...]], event: Any) -> str:
    """Every table the key schema names, plus the one the event reads: all readable locally."""
    tables = set(schema)
    table = _event_table(event)
    if table:
        tables.add(table)
    return ",".join(sorted(tables))


def _event_table(event: Any) -> str | None:
    if not isinstance(event, dict):
        return None
    path = event.get("rawPath")
    if isinstance(path, str) and path.startswith("/items/"):
        return path.removeprefix("/items/").split("/", 1)[0] or None
    table = event.get("table")
    return table if isinstance(table, str) else None


@contextmanager
def _dynamodb(schema: Mapping[str, tuple[str, ...]], event: Any, say: Say) -> Iterator[dict[str, str]]:
    """``DYNAMODB_ENDPOINT_URL`` if set, else an embedded moto with the key schema's tables (empty)."""
    endpoint = os.environ.get(DYNAMODB_ENDPOINT_URL)
    if endpoint:
        say(f"dynamodb: {DYNAMODB_ENDPOINT_URL} ({endpoint})")
        yield {}
        return
    with embedded_aws() as aws:
        assert aws.endpoint_url is not None
        _create_tables(aws.endpoint_url, schema, event)
        say(f"dynamodb: {aws.description}, tables {sorted(schema)} created empty")
        yield {DYNAMODB_ENDPOINT_URL: aws.endpoint_url}


def _create_tables(endpoint_url: str, schema: Mapping[str, tuple[str, ...]], event: Any) -> None:
    from streamcache.aws import client
    from streamcache.local.tables import create_table

    dynamodb = client("dynamodb", endpoint_url)
    for table, names in schema.items():
        create_table(dynamodb, table, [(name, _key_type(event, table, name)) for name in names], stream=False)


def _key_type(event: Any, table: str, name: str) -> str:
    """The type the event's key gives ``name`` (a number: N), else S."""
    from streamcache.local.tables import ORDERS, ORDERS_KEYS

    if table == ORDERS and names_of(ORDERS_KEYS) == tuple(local_key_schema().get(ORDERS, ())):
        return dict(ORDERS_KEYS)[name]  # the sample table: its real types
    if _event_table(event) != table:
        return "S"
    key = event.get("key") if isinstance(event.get("key"), dict) else None
    if key is None:  # a Function URL request: the query string has text only
        return "S"
    value = key.get(name)
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    return "N" if isinstance(value, int | float) and not isinstance(value, bool) else "S"


def names_of(keys: Any) -> tuple[str, ...]:
    return tuple(name for name, _ in keys)


def _call_invalidator(event: dict[str, Any]) -> Any:
    import invalidator.handler as invalidator_handler

    invalidator_handler.reset()
    try:
        return invalidator_handler.handler(event, LambdaContext())
    finally:
        invalidator_handler.reset()
        invalidator_handler.metrics.clear_metrics()


def _call_reader(event: Any) -> Any:
    import reader.handler as reader_handler
    from reader.observe import metrics

    reader_handler.reset()
    try:
        return reader_handler.handler(event, LambdaContext(function_name="streamcache-reader"))
    finally:
        reader_handler.reset()
        metrics.clear_metrics()
