"""Answers: the lookup result in the requested format, and error answers. Pure."""

from __future__ import annotations

import json
from typing import Any

from streamcache.codec import item_to_plain
from streamcache.read.cacheaside import Result

GENERIC_ERROR = "internal error; the request was logged"


def answer(result: Result, fmt: str) -> dict[str, Any]:
    """``{"found", "item", "source"}``: ``plain`` converts the item, ``dynamodb`` keeps it exact."""
    item = result.item
    if item is not None and fmt == "plain":
        item = item_to_plain(item)
    return {"found": item is not None, "item": item, "source": result.source}


def error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": message}}


def status_of(body: dict[str, Any]) -> int:
    if "error" in body:
        return int(body["error"]["status"])
    return 200 if body["found"] else 404


def to_json(body: dict[str, Any]) -> str:
    # stdlib json, not orjson: a 38-digit integral number is an int past 64 bits.
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
