"""``python -m streamcache consume``: a table's stream -> the invalidator, until interrupted or caught up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from streamcache.local import esm
from streamcache.local.destination import destination_for
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
    config = options.mapping
    Settings.from_env()  # a bad setting fails here, once, not as a function error retried forever
    arn = stream_arn_of(options.table, options.endpoint_url)
    source = DynamoDBStream(arn, streams_client(options.endpoint_url))
    destination = (
        None if options.destination is None else destination_for(options.destination, options.endpoint_url)
    )
    say(f"consuming {arn}" + (" until caught up" if options.until_caught_up else " (Ctrl-C to stop)"))

    import invalidator.handler as invalidator_handler

    mapping = esm.EventSourceMapping(
        source, invalidator_handler.handler, config, destination=destination, progress=say
    )
    try:
        mapping.run(until_caught_up=options.until_caught_up)
    except KeyboardInterrupt:
        say("interrupted")
    stats = mapping.stats
    say(
        f"{stats.records_delivered} record(s) delivered in {stats.batches} batch(es), "
        f"{stats.invocations} invocation(s), {stats.bisects} bisect(s), {stats.retries} retr(ies), "
        f"{stats.failures_sent} sent to the OnFailure destination"
    )
    return 0
