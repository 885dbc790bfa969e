"""``python -m streamcache``: the local tools (demo, up, replay, invoke, generate-event, inspect, stats,
consume, redrive) and operations (check, warm).

Exit codes: 0 done, 1 the run found a problem (failed verification, redrive
errors), 2 bad arguments, a bad input file or a bad setting - always with one
line on stderr naming it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from streamcache.errors import StreamCacheError
from streamcache.local.embedded import REDIS_CHOICES

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def _int_in(low: int, high: int, allow_minus_one: bool = False) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not (low <= value <= high or (allow_minus_one and value == -1)):
            extra = " or -1 (infinite)" if allow_minus_one else ""
            raise argparse.ArgumentTypeError(f"{value} is out of range {low}..{high}{extra}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m streamcache",
        description="streamcache's tools: the local loop, events, a look into the cache, and operations",
        epilog="example:\n  python -m streamcache demo\n  python -m streamcache up --help\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", metavar="{" + ",".join(COMMANDS) + "}", parser_class=_Parser
    )
    for add in (
        _demo_parser,
        _up_parser,
        _replay_parser,
        _invoke_parser,
        _generate_event_parser,
        _inspect_parser,
        _stats_parser,
        _consume_parser,
        _redrive_parser,
        _ops_parsers,
    ):
        add(commands)
    return parser


def _add(commands: Any, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with a worked example."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _generate_event_parser(commands: Any) -> None:
    from streamcache.local.generate_event import KINDS

    p = _add(
        commands,
        "generate-event",
        "print a sample event for your table: a stream record (insert, modify, remove, ttl) or a read",
        "python -m streamcache generate-event modify --table orders --key pk=u1,sk=42 "
        '--item \'{"status": "SHIPPED"}\' > modify.json',
    )
    p.add_argument(
        "kind", choices=KINDS, help="stream: insert modify remove ttl; reader: reader function-url"
    )
    p.add_argument("--table", required=True, help="table name")
    p.add_argument(
        "--key",
        required=True,
        action="append",
        help="key attributes: pk=u1,sk=42 (a type may follow the name: pk:S=007), or a JSON object",
    )
    p.add_argument("--item", help='other attributes as plain JSON, e.g. \'{"status": "NEW", "total": 19.9}\'')
    p.add_argument(
        "--view",
        choices=("NEW_AND_OLD_IMAGES", "NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY"),
        default="NEW_AND_OLD_IMAGES",
        help="the stream's view type (default NEW_AND_OLD_IMAGES)",
    )
    p.add_argument(
        "--sequence-number", type=_int_in(1, 10**40 - 1), default=None, help="the record's SequenceNumber"
    )


def _invoke_parser(commands: Any) -> None:
    from streamcache.local.invoke import FUNCTIONS

    p = _add(
        commands,
        "invoke",
        "run the invalidator or the reader once on an event file, print its answer (sam local invoke)",
        "python -m streamcache invoke reader --event events/reader/direct.json",
    )
    p.add_argument("function", choices=FUNCTIONS)
    p.add_argument("--event", required=True, type=Path, help="the event as JSON (see generate-event)")
    _redis_option(p)


def _replay_parser(commands: Any) -> None:
    p = _add(
        commands,
        "replay",
        "run one sample event through the invalidator and show what each key now holds",
        "python -m streamcache replay events/insert.json",
    )
    p.add_argument("event_file", type=Path, help="a DynamoDB Streams event as JSON (e.g. events/insert.json)")
    _redis_option(p)


def _demo_parser(commands: Any) -> None:
    p = _add(
        commands,
        "demo",
        "the whole loop on this machine: moto, Redis, ESM, invalidator, reader",
        "python -m streamcache demo --items 300",
    )
    p.add_argument("--items", type=_int_in(10, 5000), default=300, help="items to write (default 300)")
    p.add_argument("--batch-size", type=_int_in(1, 10_000), default=100, help="ESM BatchSize (default 100)")
    p.add_argument(
        "--parallelization-factor",
        type=_int_in(1, 10),
        default=2,
        help="ESM ParallelizationFactor: concurrent batches per shard (default 2)",
    )
    p.add_argument("--verbose", action="store_true", help="show the functions' logs and metrics")
    _redis_option(p)


def _consume_parser(commands: Any) -> None:
    p = _add(
        commands,
        "consume",
        "deliver a table's stream to the invalidator (REDIS_URL), with Lambda's event source mapping rules",
        "REDIS_URL=redis://127.0.0.1:6379/0 python -m streamcache consume --table orders --until-caught-up",
    )
    p.add_argument(
        "--table", default=os.environ.get("TABLE_NAME"), help="table whose stream to read (TABLE_NAME)"
    )
    p.add_argument(
        "--endpoint-url",
        default=os.environ.get("DYNAMODB_ENDPOINT_URL") or None,
        help="DynamoDB / Streams endpoint (DYNAMODB_ENDPOINT_URL; default AWS)",
    )
    p.add_argument("--until-caught-up", action="store_true", help="stop once every shard is read to its end")
    p.add_argument("--batch-size", type=_int_in(1, 10_000), default=100)
    p.add_argument(
        "--batching-window", type=_int_in(0, 300), default=0, help="MaximumBatchingWindowInSeconds"
    )
    p.add_argument("--max-retry-attempts", type=_int_in(0, 10_000, True), default=10)
    p.add_argument(
        "--max-record-age",
        type=_int_in(60, 604_800, True),
        default=-1,
        help="MaximumRecordAgeInSeconds (-1 infinite)",
    )
    p.add_argument("--no-bisect", action="store_true", help="BisectBatchOnFunctionError off")
    p.add_argument(
        "--no-report-batch-item-failures", action="store_true", help="ignore partial batch responses"
    )
    p.add_argument("--starting-position", choices=("TRIM_HORIZON", "LATEST"), default="TRIM_HORIZON")
    p.add_argument(
        "--destination", help="OnFailure destination: an SQS queue URL, an SNS topic ARN or a JSON-lines file"
    )
    p.add_argument("--parallelization-factor", type=_int_in(1, 10), default=1, help="ParallelizationFactor")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a FilterCriteria pattern (JSON); repeat for several (OR-ed)",
    )


def _redrive_parser(commands: Any) -> None:
    p = _add(
        commands,
        "redrive",
        "invalidate every key an OnFailure record's range touches",
        "python -m streamcache redrive https://sqs.us-east-1.amazonaws.com/123456789012/onfailure",
    )
    p.add_argument("source", help="the OnFailure destination: an SQS queue URL or a JSON-lines file")
    p.add_argument(
        "--endpoint-url",
        default=os.environ.get("DYNAMODB_ENDPOINT_URL") or None,
        help="Streams/SQS endpoint (DYNAMODB_ENDPOINT_URL; default AWS)",
    )


def _inspect_parser(commands: Any) -> None:
    p = _add(
        commands,
        "inspect",
        "show what the cache (REDIS_URL) holds for one item: key, kind, version, fill stamp, TTL, item",
        "python -m streamcache inspect orders pk=u1 sk=42",
    )
    p.add_argument("table", help="table name")
    p.add_argument(
        "key", nargs="+", help="key attributes: pk=u1 sk=42 (or pk=u1,sk=42; pk:S=007 forces a type)"
    )


def _stats_parser(commands: Any) -> None:
    p = _add(
        commands,
        "stats",
        "what the cache (REDIS_URL) holds per table and entry kind, its memory and hit/miss counters",
        "python -m streamcache stats --limit 100000",
    )
    p.add_argument(
        "--limit", type=_int_in(1, 100_000_000), default=100_000, help="keys to scan at most (default 100000)"
    )


def _up_parser(commands: Any) -> None:
    p = _add(
        commands,
        "up",
        "a local environment until Ctrl-C: DynamoDB with streams, Redis, the stream into the invalidator, "
        "the reader over HTTP",
        "python -m streamcache up --table orders --key pk:S,sk:N --table users --key id:S --port 3000",
    )
    p.add_argument("--table", action="append", default=[], help="a table to create (repeat; each with --key)")
    p.add_argument("--key", action="append", default=[], help="its key: pk:S or pk:S,sk:N (types S, N, B)")
    p.add_argument("--config", type=Path, help='JSON file: {"tables": {"orders": "pk:S,sk:N"}}')
    p.add_argument(
        "--schema-from",
        type=Path,
        action="append",
        default=[],
        help="a DescribeTable answer (aws dynamodb describe-table ... > describe.json); repeatable",
    )
    p.add_argument(
        "--port", type=_int_in(0, 65535), default=3000, help="the reader's HTTP port (0: any free)"
    )
    _redis_option(p)


# -- operations: check, warm (streamcache/ops) --------------------------------------


def _ops_parsers(commands: Any) -> None:
    table_help = "the DynamoDB table whose cached keys to use (TABLE_NAME)"
    p = _add(
        commands,
        "check",
        "compare a sample of cached keys with consistent DynamoDB reads",
        "python -m streamcache check --table orders --sample 1000 --repair",
    )
    p.add_argument("--table", default=os.environ.get("TABLE_NAME"), help=table_help)
    p.add_argument("--sample", type=_int_in(1, 10_000_000), default=1000, help="keys to check (default 1000)")
    p.add_argument(
        "--settle-seconds",
        type=_float_in(0, 3600),
        default=5.0,
        help="wait this long, then read mismatches again: records may be in flight (default 5)",
    )
    p.add_argument("--repair", action="store_true", help="invalidate keys still inconsistent (versioned)")
    p = _add(
        commands,
        "warm",
        "fill the cache from a parallel table scan, under the reader's leases",
        "python -m streamcache warm --table orders --segments 4 --max-rcu 500",
    )
    p.add_argument("--table", default=os.environ.get("TABLE_NAME"), help=table_help)
    p.add_argument("--segments", type=_int_in(1, 64), default=4, help="parallel Scan segments (default 4)")
    p.add_argument("--limit", type=_int_in(1, 10**12), default=None, help="stop after this many items")
    p.add_argument(
        "--max-rcu", type=_float_in(0.5, 10**6), default=None, help="read capacity units per second, at most"
    )


def _float_in(low: float, high: float) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{value} is out of range {low}..{high}")
        return value

    return parse


def _check(args: argparse.Namespace) -> int:
    from streamcache.ops.run import check_command

    return check_command(_table(args), args.sample, args.settle_seconds, args.repair)


def _warm(args: argparse.Namespace) -> int:
    from streamcache.ops.run import warm_command

    return warm_command(_table(args), args.segments, args.limit, args.max_rcu)


def _table(args: argparse.Namespace) -> str:
    if not args.table:
        raise _usage("--table is required (or set TABLE_NAME)")
    return str(args.table)


def _redis_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis",
        choices=REDIS_CHOICES,
        default="auto",
        help="auto: REDIS_URL, else a redis-server on a free port, else fakeredis",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("choose a command: " + ", ".join(COMMANDS))
    try:
        return int(_COMMANDS[args.command](args))
    except StreamCacheError as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130


def _replay(args: argparse.Namespace) -> int:
    from streamcache.local.replay import replay

    return replay(args.event_file, redis_choice=args.redis)


def _demo(args: argparse.Namespace) -> int:
    from streamcache.local.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            items=args.items,
            verbose=args.verbose,
            redis=args.redis,
            batch_size=args.batch_size,
            parallelization_factor=args.parallelization_factor,
        )
    )


def _consume(args: argparse.Namespace) -> int:
    from streamcache.local import esm
    from streamcache.local.consume import ConsumeOptions, consume

    if not args.table:
        raise _usage("--table is required (or set TABLE_NAME)")
    mapping = esm.MappingConfig(
        batch_size=args.batch_size,
        maximum_batching_window_s=args.batching_window,
        bisect_batch_on_function_error=not args.no_bisect,
        report_batch_item_failures=not args.no_report_batch_item_failures,
        maximum_retry_attempts=args.max_retry_attempts,
        maximum_record_age_s=args.max_record_age,
        starting_position=args.starting_position,
        parallelization_factor=args.parallelization_factor,
        filters=tuple(args.filter),
    )
    options = ConsumeOptions(
        table=args.table,
        mapping=mapping,
        endpoint_url=args.endpoint_url,
        until_caught_up=args.until_caught_up,
        destination=args.destination,
    )
    return consume(options)


def _redrive(args: argparse.Namespace) -> int:
    from streamcache.local.redrive import redrive_command

    return redrive_command(args.source, args.endpoint_url)


def _generate_event(args: argparse.Namespace) -> int:
    import json

    from streamcache.local import events
    from streamcache.local.generate_event import generate, parse_item

    key = _key_arg(args.table, args.key)
    options: dict[str, Any] = {}
    if args.kind not in ("reader", "function-url"):
        options = {"view": args.view, "sequence": args.sequence_number or events.FIRST_SEQUENCE}
    print(json.dumps(generate(args.kind, args.table, key, parse_item(args.item), **options), indent=2))
    return 0


def _invoke(args: argparse.Namespace) -> int:
    from streamcache.local.invoke import invoke

    return invoke(args.function, args.event, redis_choice=args.redis)


def _inspect(args: argparse.Namespace) -> int:
    from streamcache.keys import cache_key
    from streamcache.local.inspect import describe

    settings = _settings()
    key = _key_arg(args.table, args.key)
    key_text = cache_key(args.table, key, tuple(key), settings.key_prefix)
    with _redis(settings) as client:
        lines = describe(client, key_text)
    for label, words in lines:
        print(f"{label:<11} {words}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from streamcache.local.stats import collect, report

    settings = _settings()
    with _redis(settings) as client:
        stats = collect(client, settings.key_prefix, args.limit)
    report(stats)
    return 0


def _up(args: argparse.Namespace) -> int:
    from streamcache.local import up

    tables = up.tables_from_flags(args.table, args.key)
    if args.config is not None:
        tables.update(up.tables_from_config(args.config))
    for path in args.schema_from:
        tables.update(up.table_from_description(path))
    options = up.UpOptions(tables=tables or dict(up.DEFAULT_TABLES), port=args.port, redis=args.redis)
    return up.run_up(options, say=lambda line: print(line, flush=True))


def _settings() -> Any:
    from streamcache.settings import Settings

    return Settings.from_env()


@contextmanager
def _redis(settings: Any) -> Iterator[Any]:
    """A client for REDIS_URL (TLS, AUTH, cluster as configured); unreachable is one line, not a trace."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from streamcache.connection import INVALIDATOR_TIMEOUTS, redis_client
    from streamcache.local.embedded import safe_location

    client = redis_client(settings, INVALIDATOR_TIMEOUTS)
    try:
        yield client
    except (RedisConnectionError, RedisTimeoutError) as err:
        where = safe_location(settings.redis_url)
        raise StreamCacheError(f"cannot reach Redis at {where} (REDIS_URL): {err}") from err
    finally:
        client.close()


def _local_schemas() -> Any:
    """KEY_SCHEMA (else the sample tables'), then DescribeTable at DYNAMODB_ENDPOINT_URL if set."""
    from streamcache.local.keyargs import local_key_schema
    from streamcache.schema import KeySchemas, describe_with_boto3

    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL")
    return KeySchemas(local_key_schema(), describe_with_boto3(endpoint) if endpoint else None)


def _key_arg(table: str, parts: list[str]) -> Any:
    """The typed key written on the command line, ordered and typed by the table's schema when known."""
    from streamcache.errors import UnknownTableError
    from streamcache.local.keyargs import parse_key

    try:
        schema = _local_schemas().keys_of(table)
    except UnknownTableError:
        schema = None
    return parse_key(parts, schema)


def _usage(message: str) -> StreamCacheError:
    return StreamCacheError(message)


_COMMANDS = {
    "demo": _demo,
    "up": _up,
    "replay": _replay,
    "invoke": _invoke,
    "generate-event": _generate_event,
    "inspect": _inspect,
    "stats": _stats,
    "consume": _consume,
    "redrive": _redrive,
    "check": _check,
    "warm": _warm,
}
COMMANDS = tuple(_COMMANDS)
