"""Staleness through the local loop: moto DynamoDB + Streams -> emulated ESM -> invalidator.

A writer puts items into the table (moto server) while the event source
mapping emulator (``streamcache.local.esm``, Lambda's polling every 0.25 s,
batch size 100) delivers the stream to the real invalidator handler. Two
distributions:

- stream lag: when the invalidator applied a record minus the record's
  ApproximateCreationDateTime (what the invalidator publishes as StreamLagMs);
- invalidation delay: when the handler returned minus when ``put_item``
  returned, i.e. how long a reader could still be served the previous state.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench import stats
from bench.reader import TABLE, create_table
from bench.rig import Rig
from bench.workload import item

WRITES_PER_S = 50
KEYS = 50


def run(rig: Rig) -> dict[str, Any]:
    try:
        from streamcache.local import esm, stream
        from streamcache.local.embedded import embedded_aws, patched_environ
    except ImportError:
        return {"available": False, "note": "local loop not available"}
    seconds = 2.0 if rig.quick else 10.0
    with embedded_aws() as aws, patched_environ({**rig.env(), "POWERTOOLS_TRACE_DISABLED": "true"}):
        return _loop(rig, aws.endpoint_url, seconds, esm, stream)


def _loop(rig: Rig, endpoint_url: str | None, seconds: float, esm: Any, stream: Any) -> dict[str, Any]:
    import boto3

    import invalidator.handler as invalidator_handler

    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint_url)
    arn = create_table(dynamodb, 0, stream=True)["LatestStreamArn"]
    source = stream.DynamoDBStream(arn, stream.streams_client(endpoint_url))
    written: dict[str, float] = {}
    delays: list[float] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        response = invalidator_handler.handler(event, context)
        applied = time.time()
        for record in event["Records"]:
            write_id = record["dynamodb"].get("NewImage", {}).get("note", {}).get("S", "")[:12]
            if write_id in written:
                delays.append((applied - written[write_id]) * 1000)
        return response

    invalidator_handler.reset()
    mapping = esm.EventSourceMapping(source, handler, esm.STACK_CONFIG)
    stop = threading.Event()
    poller = threading.Thread(target=mapping.run, kwargs={"until_caught_up": False, "stop": stop.is_set})
    poller.start()
    try:
        writes = _write(dynamodb, written, seconds)
        deadline = time.monotonic() + 5.0
        while len(delays) < writes and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        poller.join(timeout=10)
        invalidator_handler.reset()
    return _summary(mapping.stats, delays, writes, seconds)


def _write(dynamodb: Any, written: dict[str, float], seconds: float) -> int:
    """Put items at ``WRITES_PER_S`` for ``seconds``; each carries its write id in ``note``."""
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        image = item(count % KEYS, count)
        write_id = f"w{count:011d}"
        image["note"] = {"S": write_id + image["note"]["S"][12:]}
        dynamodb.put_item(TableName=TABLE, Item=image)
        written[write_id] = time.time()
        count += 1
        time.sleep(1.0 / WRITES_PER_S)
    return count


def distribution(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": 0}
    return {
        "p50": stats.percentile(values, 0.5),
        "p99": stats.percentile(values, 0.99),
        "max": max(values),
        "count": len(values),
    }


def _summary(mapping_stats: Any, delays: list[float], writes: int, seconds: float) -> dict[str, Any]:
    return {
        "available": True,
        "writes": writes,
        "seconds": seconds,
        "invocations": mapping_stats.invocations,
        "distributions_ms": {
            "stream lag (applied - ApproximateCreationDateTime)": distribution(mapping_stats.lags_ms()),
            "invalidation delay (handler done - put_item returned)": distribution(delays),
        },
        "notes": [
            f"{writes} writes at up to {WRITES_PER_S}/s over {seconds:.0f} s, ESM polling every 0.25 s "
            "(Lambda's 4 polls/s), batch size 100; moto's ApproximateCreationDateTime resolution applies",
        ],
    }
