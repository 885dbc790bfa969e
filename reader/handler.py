"""Lambda entry point: ``reader.handler.handler`` (CONTRACT section 4).

Thin adapter: an HTTP event (Function URL or HTTP API, payload 2.0) goes to
the Powertools resolver in ``reader.http``; anything else is a direct invoke
(``reader.direct``). The runtime (settings, clients) is built once per
execution environment on the first call; ``reset()`` forgets it (tests).
"""

from __future__ import annotations

from typing import Any

from reader import direct, http, response
from reader.observe import logger, metrics
from reader.request import RequestError
from reader.runtime import reset, runtime
from reader.tracing import tracer

__all__ = ["handler", "lookup", "reset"]


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    if http.is_http(event):
        return http.resolve(event, context)
    return lookup(event)


def lookup(event: Any) -> dict[str, Any]:
    """A direct invoke without the decorators (benchmarks call this too)."""
    if not isinstance(event, dict):
        return response.error(400, f"the event is a {type(event).__name__}, not a JSON object")
    try:
        return direct.serve(runtime(), event)
    except RequestError as err:  # 503s: DescribeTable failed
        logger.exception("read refused: %s", err.message)
        return response.error(err.status, err.message)
