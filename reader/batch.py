"""A batch read: 1 to 100 keys of one table, answered in order (direct invoke and HTTP).

Every key is checked exactly as a single read's key; a mistake in one is a
400 naming its position (``keys[3]: ...``), and nothing is read. The answer
is ``{"items": [{"found", "item", "source"}, ...]}``, one per key, repeats
included.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from reader import observe, response
from reader.request import RequestError, bad_request, check_format, key_from_json
from reader.runtime import Runtime
from streamcache.codec import Typed
from streamcache.schema import TableKeys

MAX_KEYS = 100  # one BatchGetItem; larger batches belong to the library's get_items


def keys_from_json(raw: object, schema: TableKeys) -> list[Typed]:
    """The ``keys`` array, each key typed and checked like a single read's."""
    if not isinstance(raw, list) or not raw:
        raise bad_request(f"keys must be a JSON array of 1 to {MAX_KEYS} keys")
    if len(raw) > MAX_KEYS:
        raise bad_request(f"keys holds {len(raw)} keys; a batch reads at most {MAX_KEYS}")
    keys = []
    for index, key in enumerate(raw):
        try:
            keys.append(key_from_json(key, schema))
        except RequestError as err:
            raise RequestError(err.status, f"keys[{index}]: {err.message}") from err
    return keys


def serve(rt: Runtime, table: str, raw_keys: object, fmt: str) -> dict[str, Any]:
    """Read every key (hits from one Redis round trip, misses from one BatchGetItem)."""
    schema = rt.schema_of(table)
    keys = keys_from_json(raw_keys, schema)
    started = time.perf_counter()
    results = rt.read_many(table, schema, keys)
    observe.record_batch(table, results, started)
    return {"items": [response.answer(result, fmt) for result in results]}


def from_http_body(body: str | None, is_base64: bool) -> tuple[object, str]:
    """``POST /items/{table}/batch``'s JSON body ``{"keys": [...], "format"?}``: the keys and format."""
    if is_base64 and body is not None:
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as err:
            raise bad_request("the body is not UTF-8 JSON") from err
    try:
        fields = json.loads(body or "")
    except ValueError as err:
        raise bad_request('the body must be JSON like {"keys": [{...}, ...]}') from err
    if not isinstance(fields, dict):
        raise bad_request('the body must be a JSON object like {"keys": [{...}, ...]}')
    extra = sorted(set(fields) - {"keys", "format"})
    if extra:
        raise bad_request(f"unexpected field {extra[0]!r}; a batch body has keys and format")
    return fields.get("keys"), check_format(fields.get("format", "plain"))
