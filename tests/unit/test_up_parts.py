"""``up``'s pure parts: table definitions, the activity line, a poll that fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamcache.errors import ConfigError
from streamcache.local import esm, up


def test_key_specs() -> None:
    assert up.parse_key_spec("pk:S,sk:N") == (("pk", "S"), ("sk", "N"))
    assert up.parse_key_spec("id") == (("id", "S"),)
    assert up.tables_from_flags(["a", "b"], ["id:B", "pk:N,sk:S"]) == {
        "a": (("id", "B"),),
        "b": (("pk", "N"), ("sk", "S")),
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pk:X", "write it as pk:S"),
        ("a,b,c", "at most one range key"),
        ("a,a", "at most one range key"),
        (":S", ""),
    ],
)
def test_bad_key_specs_name_the_spec(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"key {spec!r}") as err:
        up.parse_key_spec(spec)
    assert message in str(err.value)


def test_a_describe_table_answer_gives_the_key_hash_first(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"Table": {
        "TableName": "t",
        "KeySchema": [{"AttributeName": "r", "KeyType": "RANGE"}, {"AttributeName": "h", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "r", "AttributeType": "N"},
                                 {"AttributeName": "h", "AttributeType": "B"}],
    }}))  # fmt: skip
    assert up.table_from_description(path) == {"t": (("h", "B"), ("r", "N"))}


@pytest.mark.parametrize(
    ("content", "message"), [("{}", "is not a DescribeTable answer"), ("[", "is not valid JSON")]
)
def test_a_bad_description_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        up.table_from_description(path)


def test_a_config_file_must_map_tables_to_key_specs(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"tables": ["orders"]}')
    with pytest.raises(ConfigError, match="expected"):
        up.tables_from_config(path)


def test_the_activity_line_counts_hits_misses_and_refusals() -> None:
    activity = up.Activity()
    activity.read(200, '{"found": true, "source": "cache"}')
    activity.read(404, '{"found": false, "source": "dynamodb"}')
    activity.read(403, '{"error": {}}')
    activity.read(200, "not json")
    assert activity.line().endswith("reader: 1 hit(s), 1 miss(es), 2 refused")


class FailingSource:
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"

    def shards(self) -> Any:
        raise ConnectionError("endpoint went away")


def test_a_failed_poll_is_said_and_not_fatal() -> None:
    said: list[str] = []
    poller = up.Poller("http://127.0.0.1:1", lambda event, context: None, up.Activity(), said.append)
    mapping = esm.EventSourceMapping(FailingSource(), lambda event, context: None)  # type: ignore[arg-type]
    assert poller._poll(mapping) is False
    assert said == [
        f"stream: polling {FailingSource.arn} failed (ConnectionError: endpoint went away); retrying"
    ]
