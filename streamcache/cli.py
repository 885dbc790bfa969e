"""``python -m streamcache``: replay, demo, consume, redrive (the local tools); check, warm (operations).

Exit codes: 0 done, 1 the run found a problem (failed verification, redrive
errors), 2 bad arguments, a bad input file or a bad setting - always with one
line on stderr naming it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
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
    parser = _Parser(prog="python -m streamcache", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(
        dest="command", metavar="{replay,demo,consume,redrive,check,warm}", parser_class=_Parser
    )
    _replay_parser(commands)
    _demo_parser(commands)
    _consume_parser(commands)
    _redrive_parser(commands)
    _ops_parsers(commands)
    return parser


def _replay_parser(commands: Any) -> None:
    p = commands.add_parser("replay", help="run one sample event through the invalidator")
    p.add_argument("event_file", type=Path, help="a DynamoDB Streams event as JSON (e.g. events/insert.json)")
    _redis_option(p)


def _demo_parser(commands: Any) -> None:
    p = commands.add_parser(
        "demo", help="the whole loop on this machine: moto, Redis, ESM, invalidator, reader"
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
    p = commands.add_parser("consume", help="deliver a table's stream to the invalidator (REDIS_URL)")
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
    p = commands.add_parser("redrive", help="invalidate every key an OnFailure record's range touches")
    p.add_argument("source", help="the OnFailure destination: an SQS queue URL or a JSON-lines file")
    p.add_argument(
        "--endpoint-url",
        default=os.environ.get("DYNAMODB_ENDPOINT_URL") or None,
        help="Streams/SQS endpoint (DYNAMODB_ENDPOINT_URL; default AWS)",
    )


# -- operations: check, warm (streamcache/ops) --------------------------------------


def _ops_parsers(commands: Any) -> None:
    table_help = "the DynamoDB table whose cached keys to use (TABLE_NAME)"
    p = commands.add_parser("check", help="compare a sample of cached keys with consistent DynamoDB reads")
    p.add_argument("--table", default=os.environ.get("TABLE_NAME"), help=table_help)
    p.add_argument("--sample", type=_int_in(1, 10_000_000), default=1000, help="keys to check (default 1000)")
    p.add_argument(
        "--settle-seconds",
        type=_float_in(0, 3600),
        default=5.0,
        help="wait this long, then read mismatches again: records may be in flight (default 5)",
    )
    p.add_argument("--repair", action="store_true", help="invalidate keys still inconsistent (versioned)")
    p = commands.add_parser(
        "warm", help="fill the cache from a parallel table scan, under the reader's leases"
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
        parser.error("choose a command: replay, demo, consume, redrive, check or warm")
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


def _usage(message: str) -> StreamCacheError:
    return StreamCacheError(message)


_COMMANDS = {
    "replay": _replay,
    "demo": _demo,
    "consume": _consume,
    "redrive": _redrive,
    "check": _check,
    "warm": _warm,
}
