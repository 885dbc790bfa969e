"""Direct invoke: ``{"table", "key", "format"}`` -> ``{"found", "item", "source"}``.

A batch: ``{"table", "keys": [...], "format"}`` (1 to 100 keys) ->
``{"items": [{"found", "item", "source"}, ...]}`` in order (``reader.batch``).
A query: ``{"table", "query": {...}, "format"}`` (``reader.query``).

Mistakes are answered, not raised: a raised error reaches the caller with a
stack trace. The answer is ``{"error": {"status": 400|403|500|503, "message"}}``
with the same statuses the HTTP interface uses; 5xx are logged with the exception.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from reader import batch, observe, query, response
from reader.request import RequestError, bad_request, check_format, check_table
from reader.runtime import Runtime


def serve(rt: Runtime, event: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return _serve(rt, event)
    except RequestError as err:
        if err.status >= 500:
            observe.logger.exception("read failed: %s", err.message)
        observe.refused(err.status)
        return response.error(err.status, err.message)
    except Exception:
        observe.logger.exception("unexpected error in a direct read")
        observe.refused(500)
        return response.error(500, response.GENERIC_ERROR)


_FIELDS = frozenset({"table", "key", "keys", "query", "format"})


def _serve(rt: Runtime, event: Mapping[str, Any]) -> dict[str, Any]:
    extra = [] if event.keys() <= _FIELDS else sorted(set(event) - _FIELDS)
    if extra:
        raise bad_request(
            f"unexpected field {extra[0]!r}; a direct invoke has table, key (or keys, or query), format"
        )
    if ("key" in event) + ("keys" in event) + ("query" in event) > 1:
        raise bad_request("give one of key (one read), keys (a batch) or query, not both")
    table = check_table(event.get("table") or rt.settings.table_name, rt.settings.allowed_tables)
    fmt = check_format(event.get("format", "plain"))
    if "keys" in event:
        return batch.serve(rt, table, event["keys"], fmt)
    if "query" in event:
        return query.serve(rt.queries(table), event["query"], fmt)
    schema = rt.schema_of(table)
    key, key_text = rt.key_of(table, schema, event.get("key"))
    started = time.perf_counter()
    result = rt.read(table, schema, key, key_text)
    observe.record(table, result, started)
    return response.answer(result, fmt)
