"""Replay one sample event through the invalidator and show what each key now holds (docs/local.md).

``KEY_SCHEMA`` comes from the environment, else ``DEFAULT_KEY_SCHEMA``
(``events.SAMPLE_KEY_SCHEMA``) - a default for the local tools only, fitting the sample events in ``events/``
(the deployed functions never assume one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamcache.batch import records_of
from streamcache.errors import MalformedEventError, RecordError, StreamCacheError
from streamcache.local.embedded import local_redis, patched_environ
from streamcache.local.events import SAMPLE_KEY_SCHEMA
from streamcache.local.inspect import holding
from streamcache.records import record_key
from streamcache.schema import KeySchemas
from streamcache.settings import CACHE_KEY_PREFIX, KEY_SCHEMA, parse_key_schema

DEFAULT_KEY_SCHEMA = json.dumps(SAMPLE_KEY_SCHEMA)

# Quiet, local-only Powertools settings for an in-process handler.
QUIET_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "streamcache",
}


def without_metrics(handler: Callable[[Any, Any], Any], metrics: Any) -> Callable[[Any, Any], Any]:
    """``handler``, clearing Powertools' metric buffer after each call.

    With POWERTOOLS_METRICS_DISABLED=true Powertools neither prints nor clears
    the buffer, and prints it anyway once it holds 100 values: clear it here.
    """

    def call(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            metrics.clear_metrics()

    return call


class ReplayError(StreamCacheError):
    """The file cannot be replayed: missing, not JSON, or not a DynamoDB Streams event."""


def read_json(path: Path, error: type[StreamCacheError] = ReplayError) -> Any:
    """A JSON file's value; ``error`` with one line naming the file when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise error(f"cannot read {str(path)!r}: {err.strerror or err}") from err
    try:
        return json.loads(text)
    except ValueError as err:
        raise error(f"{str(path)!r} is not valid JSON ({err})") from None


def load_event(path: Path) -> dict[str, Any]:
    event = read_json(path)
    try:
        records_of(event)
    except MalformedEventError as err:
        raise ReplayError(f"{str(path)!r}: {err}") from err
    assert isinstance(event, dict)
    return event


def event_keys(event: dict[str, Any], schemas: KeySchemas, prefix: str) -> list[str | RecordError]:
    """Per record, in order and without repeats: its cache key, or why it has none."""
    found: list[str | RecordError] = []
    for record in event["Records"]:
        try:
            key: str | RecordError = record_key(record, schemas, prefix)
        except RecordError as err:
            key = err
        if key not in found:
            found.append(key)
    return found


def replay(path: Path, say: Callable[[str], None] = print, redis_choice: str = "auto") -> int:
    """Run ``invalidator.handler.handler`` on the event; 0 when every record applied, else 1."""
    event = load_event(path)
    key_schema = os.environ.get(KEY_SCHEMA) or DEFAULT_KEY_SCHEMA
    if not os.environ.get(KEY_SCHEMA):
        say(f"KEY_SCHEMA not set: using the local tools' default {DEFAULT_KEY_SCHEMA}")
    schemas = KeySchemas(parse_key_schema(key_schema), None)
    prefix = os.environ.get(CACHE_KEY_PREFIX, "")
    with local_redis(redis_choice) as redis_:
        say(f"redis: {redis_.description}")
        env = {**QUIET_ENV, **{k: v for k, v in os.environ.items() if k.startswith("POWERTOOLS_")}}
        env.update({"REDIS_URL": redis_.url, KEY_SCHEMA: key_schema})
        with patched_environ(env):
            response = _invoke(event)
            say("batch response: " + json.dumps(response))
            _show_keys(event_keys(event, schemas, prefix), redis_.url, say)
    return _verdict(response, say)


def _verdict(response: dict[str, Any], say: Callable[[str], None]) -> int:
    reported = len(response.get("batchItemFailures") or [])
    if not reported:
        return 0
    say(f"{reported} record(s) reported as not applied: Lambda would retry them (see '(no key)' above)")
    return 1


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    import invalidator.handler as invalidator_handler  # after the environment is set: Powertools reads it

    invalidator_handler.reset()
    try:
        return invalidator_handler.handler(event, None)
    finally:
        invalidator_handler.reset()


def _show_keys(keys: list[str | RecordError], url: str, say: Callable[[str], None]) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in keys:
            if isinstance(key, RecordError):
                say(f"  (no key) {key}")
                continue
            held = holding(client, key)
            item = "" if held["item"] is None else " " + json.dumps(held["item"], sort_keys=True)
            say(f"  {key}: {held['state']} version={held['version']} ttl={held['ttl']}{item}")
    finally:
        client.close()
