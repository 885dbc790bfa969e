"""Answer shaping: plain vs dynamodb, statuses, JSON with big integers."""

from __future__ import annotations

import json

from reader.response import answer, error, status_of, to_json
from streamcache.read.cacheaside import Result

BIG = "12345678901234567890123456789012345678"
ITEM = {"pk": {"S": "u1"}, "n": {"N": BIG}, "ss": {"SS": ["b", "a"]}}


def test_dynamodb_format_is_the_typed_item_exactly() -> None:
    assert answer(Result(ITEM, "cache"), "dynamodb") == {"found": True, "item": ITEM, "source": "cache"}


def test_plain_format_converts() -> None:
    body = answer(Result(ITEM, "dynamodb"), "plain")
    assert body == {
        "found": True,
        "item": {"pk": "u1", "n": int(BIG), "ss": ["a", "b"]},
        "source": "dynamodb",
    }


def test_not_found_is_404_with_null_item() -> None:
    body = answer(Result(None, "cache"), "plain")
    assert body == {"found": False, "item": None, "source": "cache"}
    assert status_of(body) == 404
    assert status_of(error(403, "no")) == 403


def test_json_body_keeps_38_digit_integers_exact() -> None:
    text = to_json(answer(Result(ITEM, "cache"), "plain"))
    assert BIG in text
    assert json.loads(text)["item"]["n"] == int(BIG)
