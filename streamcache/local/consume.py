"""``python -m streamcache consume``: a table's stream -> the invalidator, until interrupted or caught up.

Quiet like ``replay``: the invalidator's Powertools INFO logs and EMF blobs are
off unless POWERTOOLS_LOG_LEVEL / POWERTOOLS_METRICS_DISABLED say otherwise.
Exit 1 when any record was discarded (retries or record age ran out): its key
was never applied, and the run must not look like a success.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from streamcache.local import esm
from streamcache.local.destination import destination_for
from streamcache.local.embedded import patched_environ
from streamcache.local.replay import QUIET_ENV, without_metrics
from streamcache.local.stream import DynamoDBStream, stream_arn_of, streams_client
from streamcache.settings import Settings


@dataclass(frozen=True)
class ConsumeOptions:
    table: str
    mapping: esm.MappingConfig = field(default_factory=esm.MappingConfig)
    endpoint_url: str | None = None
    until_caught_up: bool = False
    destination: str | None = None


def consume(options: ConsumeOptions, say: Callable[[str], None] = print) -> int:
    Settings.from_env()  # a bad setting fails here, once, not as a function error retried forever
    arn = stream_arn_of(options.table, options.endpoint_url)
    source = DynamoDBStream(arn, streams_client(options.endpoint_url))
    destination = (
        None if options.destination is None else destination_for(options.destination, options.endpoint_url)
    )
    say(f"consuming {arn}" + (" until caught up" if options.until_caught_up else " (Ctrl-C to stop)"))
    with patched_environ(_quiet_env()):
        stats = _run(source, options, destination, say)
    say(
        f"{stats.records_delivered} record(s) delivered in {stats.batches} batch(es), "
        f"{stats.invocations} invocation(s), {stats.bisects} bisect(s), {stats.retries} retr(ies), "
        f"{stats.failures_sent} sent to the OnFailure destination"
    )
    return _verdict(stats, say)


def _quiet_env() -> dict[str, str]:
    """QUIET_ENV, except where the user set a POWERTOOLS_* variable themselves."""
    return {**QUIET_ENV, **{k: v for k, v in os.environ.items() if k.startswith("POWERTOOLS_")}}


def _run(
    source: DynamoDBStream,
    options: ConsumeOptions,
    destination: esm.Destination | None,
    say: Callable[[str], None],
) -> esm.Stats:
    import invalidator.handler as invalidator_handler  # after the environment is set: Powertools reads it

    handler = without_metrics(invalidator_handler.handler, invalidator_handler.metrics)
    mapping = esm.EventSourceMapping(source, handler, options.mapping, destination=destination, progress=say)
    logger = invalidator_handler.logger
    level = logger.log_level
    logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])  # also when the handler was imported earlier
    try:
        mapping.run(until_caught_up=options.until_caught_up)
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        logger.setLevel(level)
    return mapping.stats


def _verdict(stats: esm.Stats, say: Callable[[str], None]) -> int:
    if not stats.records_discarded:
        return 0
    every = " (every record read)" if not stats.records_delivered else ""
    say(
        f"{stats.records_discarded} record(s) discarded{every} after retries ran out: "
        "never applied, their keys may be stale (see the OnFailure destination, or redrive)"
    )
    return 1
