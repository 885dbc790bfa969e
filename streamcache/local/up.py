"""``python -m streamcache up``: a local environment that lasts until Ctrl-C (LocalStack + ``sam local``).

Started, in order, and stopped in reverse on Ctrl-C (SIGINT):

- the embedded DynamoDB (moto server on a free port) with your tables and their
  NEW_AND_OLD_IMAGES streams;
- a Redis (``REDIS_URL``, else a ``redis-server`` of ours, else fakeredis);
- the event source mapping emulator, one per table stream (tables created
  later, with a stream, are picked up too), invoking the invalidator with the
  stack's settings (BatchSize 100, bisect, partial batch responses, 10 retries);
- the reader over local HTTP: each request becomes the Function URL event
  Lambda would send (payload 2.0) and goes to ``reader.handler``, so the
  routes and answers are the Function URL's (``GET /items/{table}?<key>``).

It prints the ``export`` lines that point boto3, the AWS CLI and the library
at them, then one activity line whenever something happened.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from streamcache.errors import ConfigError
from streamcache.local import esm
from streamcache.local.embedded import FAKE_AWS_ENV, embedded_aws, local_redis, patched_environ
from streamcache.local.replay import QUIET_ENV, read_json, without_metrics

Say = Callable[[str], None]
KeyDef = tuple[tuple[str, str], ...]  # ((name, type), ...), hash first
DEFAULT_TABLES = {"orders": (("pk", "S"), ("sk", "N"))}
DISCOVER_EVERY_S = 1.0
ACTIVITY_EVERY_S = 1.0


@dataclass
class UpOptions:
    tables: dict[str, KeyDef] = field(default_factory=lambda: dict(DEFAULT_TABLES))
    port: int = 3000
    host: str = "127.0.0.1"
    redis: str = "auto"


# -- table definitions: --table/--key, --config, --schema-from ---------------------


def parse_key_spec(text: str) -> KeyDef:
    """``pk:S,sk:N`` (hash first; a missing type is S) as ((name, type), ...)."""
    keys = []
    for part in text.split(","):
        name, _, type_ = part.strip().partition(":")
        type_ = type_ or "S"
        if not name or type_ not in ("S", "N", "B"):
            raise ConfigError(f"key {text!r}: write it as pk:S or pk:S,sk:N (types S, N or B)")
        keys.append((name, type_))
    if len(keys) not in (1, 2) or len({n for n, _ in keys}) != len(keys):
        raise ConfigError(f"key {text!r}: a table has a hash key and at most one range key")
    return tuple(keys)


def tables_from_flags(names: Sequence[str], keys: Sequence[str]) -> dict[str, KeyDef]:
    if len(names) != len(keys):
        raise ConfigError(
            f"{len(names)} --table but {len(keys)} --key: give each table its --key pk:S[,sk:N]"
        )
    return {name: parse_key_spec(key) for name, key in zip(names, keys, strict=True)}


def tables_from_config(path: Path) -> dict[str, KeyDef]:
    """A JSON file ``{"tables": {"orders": "pk:S,sk:N", "users": "id:S"}}``."""
    data = read_json(path, ConfigError)
    tables = data.get("tables") if isinstance(data, dict) else None
    if not isinstance(tables, dict) or not all(isinstance(v, str) for v in tables.values()):
        raise ConfigError(f'{str(path)!r}: expected {{"tables": {{"orders": "pk:S,sk:N"}}}}')
    return {str(name): parse_key_spec(spec) for name, spec in tables.items()}


def table_from_description(path: Path) -> dict[str, KeyDef]:
    """``aws dynamodb describe-table --table-name T > describe.json``: that table's key schema."""
    from streamcache.schema import table_keys_from_description

    data = read_json(path, ConfigError)
    table = data.get("Table", data) if isinstance(data, dict) else None
    try:
        assert isinstance(table, dict)
        keys = table_keys_from_description(table)
        name = str(table["TableName"])
    except (AssertionError, KeyError, TypeError) as err:
        raise ConfigError(f"{str(path)!r} is not a DescribeTable answer (missing {err})") from None
    assert keys.types is not None
    return {name: tuple(zip(keys.names, keys.types, strict=True))}


# -- activity ------------------------------------------------------------------------


@dataclass
class Activity:
    """What happened so far; the poller and the HTTP threads count, the main thread prints."""

    reads: dict[str, int] = field(default_factory=lambda: {"hits": 0, "misses": 0, "refused": 0})
    mappings: list[esm.EventSourceMapping] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, status: int, body: str) -> None:
        try:
            source = json.loads(body).get("source") if status in (200, 404) else None
        except ValueError:
            source = None
        with self.lock:
            self.reads[{"cache": "hits", "dynamodb": "misses"}.get(str(source), "refused")] += 1

    def line(self) -> str:
        stats = [m.stats for m in list(self.mappings)]
        delivered = sum(s.records_delivered for s in stats)
        errors = sum(s.function_errors for s in stats)
        discarded = sum(s.records_discarded for s in stats)
        with self.lock:
            reads = dict(self.reads)
        return (
            f"stream: {delivered} record(s) applied, {errors} function error(s), {discarded} discarded | "
            f"reader: {reads['hits']} hit(s), {reads['misses']} miss(es), {reads['refused']} refused"
        )


# -- the reader over HTTP -------------------------------------------------------------


def reader_server(host: str, port: int, call: Callable[[dict[str, Any]], Any], activity: Activity) -> Any:
    """A threading HTTP server turning each request into a Function URL event for ``call``."""
    from streamcache.local.generate_event import FUNCTION_URL_DOMAIN, http_event

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = call(http_event(self.command, path, query, FUNCTION_URL_DOMAIN, headers))
            status = int(answer.get("statusCode", 200))
            body = str(answer.get("body") or "")
            activity.read(status, body)
            payload = body.encode("utf-8")
            self.send_response(status)
            for name, value in (answer.get("headers") or {}).items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return  # the activity line counts requests; no access log

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as err:
        raise ConfigError(f"cannot serve the reader on {host}:{port} ({err.strerror}): pass --port") from err


# -- the event source mappings ----------------------------------------------------------


class Poller:
    """One thread polling every table's stream (4 polls a second when idle), finding new tables."""

    def __init__(self, endpoint_url: str, handler: esm.Handler, activity: Activity, say: Say) -> None:
        self.endpoint_url, self.handler, self.activity, self.say = endpoint_url, handler, activity, say
        self.stop = threading.Event()
        self._tables: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="esm-poller", daemon=True)

    def start(self) -> None:
        self.discover()
        self._thread.start()

    def join(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)

    def discover(self) -> None:
        from streamcache.aws import client
        from streamcache.local.stream import DynamoDBStream, streams_client

        dynamodb = client("dynamodb", self.endpoint_url)
        for table in dynamodb.list_tables()["TableNames"]:
            if table in self._tables:
                continue
            arn = dynamodb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
            if not arn:
                continue
            source = DynamoDBStream(arn, streams_client(self.endpoint_url))
            mapping = esm.EventSourceMapping(source, self.handler, esm.STACK_CONFIG, progress=self._progress)
            self._tables.add(table)
            self.activity.mappings.append(mapping)
            self.say(f"stream: {table} -> invalidator ({arn})")

    def _progress(self, line: str) -> None:
        if not line.startswith("delivered "):  # retries, bisects, discards: worth a line each
            self.say(f"stream: {line}")

    def _run(self) -> None:
        last_discovery = time.monotonic()
        while not self.stop.is_set():
            progressed = False
            for mapping in list(self.activity.mappings):
                progressed |= self._poll(mapping)
            if time.monotonic() - last_discovery >= DISCOVER_EVERY_S:
                self._discover_quietly()
                last_discovery = time.monotonic()
            if not progressed:
                self.stop.wait(esm.Timing().poll_interval_s)

    def _poll(self, mapping: esm.EventSourceMapping) -> bool:
        """One poll; a failure to read the stream is said and retried at the next poll, never fatal."""
        try:
            return mapping.poll_once(self.stop.is_set)
        except Exception as err:
            if not self.stop.is_set():
                where = getattr(mapping.source, "arn", "a stream")
                self.say(f"stream: polling {where} failed ({type(err).__name__}: {err}); retrying")
            return False
        finally:
            mapping.stats.deliveries.clear()  # per-record timings: unbounded in a long session

    def _discover_quietly(self) -> None:
        try:
            self.discover()
        except Exception as err:  # the embedded DynamoDB going away at shutdown, mostly
            if not self.stop.is_set():
                self.say(f"stream: table discovery failed ({type(err).__name__}); retrying")


# -- up ---------------------------------------------------------------------------------


def exports(aws_url: str, redis_url: str, key_schema: str) -> list[str]:
    """What to paste into another shell so boto3, the AWS CLI and the library use this environment."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")
    return [
        f"export AWS_ENDPOINT_URL_DYNAMODB={aws_url}",
        f"export AWS_ENDPOINT_URL_DYNAMODB_STREAMS={aws_url}",
        f"export DYNAMODB_ENDPOINT_URL={aws_url}",
        f"export REDIS_URL={redis_url}",
        f"export KEY_SCHEMA='{key_schema}'",
        *(f"export {name}={FAKE_AWS_ENV[name]}" for name in names),
    ]


def run_up(options: UpOptions, say: Say = print, stop: threading.Event | None = None) -> int:
    """Run until Ctrl-C (or ``stop`` is set); 0 once everything it started is stopped."""
    stop = stop or threading.Event()
    with _stopped_by_signals(stop), embedded_aws() as aws, local_redis(options.redis) as redis_:
        assert aws.endpoint_url is not None
        _create_tables(aws.endpoint_url, options.tables)
        key_schema = json.dumps({t: [n for n, _ in keys] for t, keys in options.tables.items()})
        env = _handler_env(aws.endpoint_url, redis_.url, key_schema, options)
        say(f"aws:    {aws.description}, tables {sorted(options.tables)} with streams")
        say(f"redis:  {redis_.description}")
        with patched_environ(env), _running(options, aws.endpoint_url, say) as (server, activity):
            host, port = server.server_address[:2]
            first = next(iter(options.tables))
            example = "&".join(f"{n}=..." for n, _ in options.tables[first])
            say(f"reader: http://{host}:{port}/items/{first}?{example}  (GET /items/{{table}}?<key>)")
            for line in exports(aws.endpoint_url, redis_.url, key_schema):
                say(line)
            say("ready (Ctrl-C to stop)")
            _watch(activity, stop, say)
    say("stopped: reader, event source mappings, Redis and the embedded DynamoDB")
    return 0


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop``, so everything started is stopped in order.

    Set explicitly: a process started in the background by a non-interactive
    shell inherits SIGINT ignored, and SIGTERM's default would skip the cleanup
    (leaving our redis-server behind).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = lambda signum, frame: stop.set()  # noqa: E731
    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def _create_tables(endpoint_url: str, tables: dict[str, KeyDef]) -> None:
    from streamcache.aws import client
    from streamcache.local.tables import create_table

    dynamodb = client("dynamodb", endpoint_url)
    for name, keys in tables.items():
        create_table(dynamodb, name, keys)


def _handler_env(aws_url: str, redis_url: str, key_schema: str, options: UpOptions) -> dict[str, str]:
    return {
        **QUIET_ENV,
        "REDIS_URL": redis_url,
        "KEY_SCHEMA": key_schema,
        "TABLE_NAME": next(iter(options.tables)),
        "ALLOWED_TABLES": ",".join(options.tables),
        "DYNAMODB_ENDPOINT_URL": aws_url,
    }


@contextmanager
def _running(options: UpOptions, aws_url: str, say: Say) -> Iterator[tuple[Any, Activity]]:
    """The poller thread and the HTTP reader, stopped (in reverse) however the block ends."""
    import invalidator.handler as invalidator_handler
    import reader.handler as reader_handler
    from reader.observe import metrics as reader_metrics

    invalidator_handler.reset()
    reader_handler.reset()
    lock = threading.Lock()  # one function at a time: Powertools' metric buffer is process-wide
    activity = Activity()
    invalidate = _serialised(without_metrics(invalidator_handler.handler, invalidator_handler.metrics), lock)
    read = _serialised(without_metrics(reader_handler.handler, reader_metrics), lock)
    context = esm.LambdaContext(function_name="streamcache-reader")
    poller = Poller(aws_url, invalidate, activity, say)
    server = reader_server(options.host, options.port, lambda event: read(event, context), activity)
    http_thread = threading.Thread(target=server.serve_forever, name="reader-http", daemon=True)
    try:
        poller.start()
        http_thread.start()
        yield server, activity
    finally:
        server.shutdown()
        server.server_close()
        poller.join()
        invalidator_handler.reset()
        reader_handler.reset()


def _serialised(handler: esm.Handler, lock: threading.Lock) -> esm.Handler:
    def call(event: Any, context: Any) -> Any:
        with lock:
            return handler(event, context)

    return call


def _watch(activity: Activity, stop: threading.Event, say: Say) -> None:
    """Print the activity line whenever it changed (at most once a second) until ``stop`` is set."""
    shown = activity.line()
    while not stop.wait(ACTIVITY_EVERY_S):
        line = activity.line()
        if line != shown:
            say(line)
            shown = line
    say("")
    say("stopping (Ctrl-C or SIGTERM)")
    sys.stdout.flush()
