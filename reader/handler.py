"""Lambda entry point: ``reader.handler.handler`` (the reader's interface).

Thin adapter: an HTTP event (Function URL or HTTP API, payload 2.0) goes to
the Powertools resolver in ``reader.http``; anything else is a direct invoke
(``reader.direct``). The runtime (settings, clients) is built once per
execution environment on the first call; ``reset()`` forgets it (tests).
"""

from __future__ import annotations

from typing import Any

from reader import direct, http, observe, response
from reader.runtime import built, reset, runtime
from reader.tracing import traced_handler
from streamcache import aws

__all__ = ["handler", "lookup", "reset"]


def _handle(event: Any, context: Any) -> dict[str, Any]:
    with aws.invocation(context):  # DescribeTable never runs past the function's timeout
        try:
            if http.is_http(event):
                return http.resolve(event, context)
            return lookup(event)
        finally:
            # Metrics are aggregated here and flushed through Powertools when due (see observe).
            rt = built()
            if rt is None:
                observe.flush_if_due(None)
            else:
                observe.flush_if_due(rt.cache.counters, rt.cache.near)


handler = traced_handler(_handle)


def lookup(event: Any) -> dict[str, Any]:
    """A direct invoke without the decorators (benchmarks call this too)."""
    if not isinstance(event, dict):
        observe.refused(400)
        return response.error(400, f"the event is a {type(event).__name__}, not a JSON object")
    return direct.serve(runtime(), event)
