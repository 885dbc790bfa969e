"""The functions' Logger writes the lines Powertools' default would (same fields, same values)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from streamcache.logs import dumps, message_or_json, powertools_logger


def lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capfd.readouterr().out.split("\n") if line]  # not splitlines: U+2028


@pytest.mark.parametrize(
    "message", ["batch applied", '{"event": "x", "n": 1}', "[1, 2]", "{not json", "ünïcode \u2028", ""]
)
def test_same_fields_as_powertools_default(message: str, capfd: pytest.CaptureFixture[str]) -> None:
    extra = {"records": 3, "table": "orders-ü", "big": 2**70, "surrogate": "\ud800", "none": None}
    name = f"svc-{abs(hash(message))}"  # a Logger's stream is fixed by its first creation per service
    powertools_logger(f"{name}-ours").info(message, extra=extra)
    Logger(service=f"{name}-default").info(message, extra=extra)
    ours, default = lines(capfd)
    for line in (ours, default):
        for differs in ("timestamp", "service", "location"):  # location: the line number
            line.pop(differs)
    assert ours == default


def test_service_name_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "from-env")
    assert powertools_logger("fallback").service == "from-env"


def test_what_orjson_refuses_is_written_by_the_standard_encoder() -> None:
    assert json.loads(dumps({"n": 2**70, "s": "\ud800x"})) == {"n": 2**70, "s": "\ud800x"}
    assert dumps({"d": object, "ü": 1}) == json.dumps(
        {"d": str(object), "ü": 1}, separators=(",", ":"), ensure_ascii=False
    )


def test_only_json_looking_messages_are_parsed() -> None:
    assert message_or_json("plain") == "plain"
    assert message_or_json('{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError):
        message_or_json("{broken")
