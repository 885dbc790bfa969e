"""``python -m streamcache``: one-line errors with exit 2, and replay of every sample event."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamcache.cli import main
from streamcache.local import events

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "events").glob("*.json"))


def one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "choose a command"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["replay"], "the following arguments are required: event_file"),
        (["demo", "--items", "x"], "--items: 'x' is not a whole number"),
        (["demo", "--items", "5"], "--items: 5 is out of range 10..5000"),
        (["consume", "--table", "t", "--max-record-age", "30"], "30 is out of range 60..604800 or -1"),
        (["replay", "e.json", "--redis", "memcached"], "invalid choice: 'memcached'"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in one_line_exit_2(capsys, argv)


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("replay", "demo", "consume", "redrive"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert f"streamcache {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not valid JSON"),
        ('{"Records": "nope"}', "not a DynamoDB Streams event"),
        ('{"Records": [{"dynamodb": {}}]}', "has no dynamodb.SequenceNumber"),
    ],
)
def test_bad_event_files_get_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "event.json"
    if content is not None:
        path.write_text(content)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_consume_without_a_table_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)
    assert main(["consume"]) == 2
    assert "--table is required" in capsys.readouterr().err


# What a key holds after the invalidator applied a record, by the record (the invalidator's promise).
HELD_LINE = re.compile(r"^  (?P<key>\S+): (?P<state>.+?) version=(?P<version>\d+) ttl=\d+")


def expected_state(record: dict[str, Any]) -> str:
    if record["eventName"] == "REMOVE":
        return "not found (tombstone)"  # a delete or a TTL expiry: never the old image
    return "item" if "NewImage" in record["dynamodb"] else "invalidated"


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_replay_of_every_sample_event(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, redis_url: str, sample: Path
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("KEY_SCHEMA", raising=False)
    poisoned = sample.name == "poison-batch.json"  # a record with no usable key: reported, exit 1
    assert main(["replay", str(sample)]) == (1 if poisoned else 0)
    out = capsys.readouterr().out
    assert "using the local tools' default" in out and "batch response: {" in out
    assert ("record(s) reported as not applied" in out) == poisoned
    records = json.loads(sample.read_text())["Records"]
    by_sequence = {r["dynamodb"]["SequenceNumber"]: r for r in records}
    shown = [line for line in out.splitlines() if line.startswith("  ")]
    assert shown, out
    for line in shown:  # one line per key: the state the newest record for it left
        if line.startswith("  (no key) "):
            assert poisoned, line  # only the poison sample has a record without a usable key
            continue
        held = HELD_LINE.match(line)
        assert held is not None, line
        record = by_sequence[held["version"]]
        assert held["state"] == expected_state(record), line


def test_replay_shows_what_each_key_holds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keys = {"pk": {"S": "a-b"}, "sk": {"N": "1.50"}}
    record = events.record(
        "orders", "INSERT", keys, events.FIRST_SEQUENCE, new=events.item(keys, v={"S": "x"})
    )
    path = tmp_path / "e.json"
    path.write_text(json.dumps(events.event([record])))
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["replay", str(path), "--redis", "fakeredis"]) == 0
    out = capsys.readouterr().out
    assert "redis: fakeredis" in out
    assert 'batch response: {"batchItemFailures": []}' in out
    assert f"orders-a%2Db-1.5: item version={events.FIRST_SEQUENCE}" in out


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamcache", "demo", "--batch-size", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().endswith("--batch-size: 0 is out of range 1..10000 (see --help)")


def _replay_records(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, table: str, *keys: dict
) -> tuple[int, str]:
    records = [
        events.record(table, "INSERT", k, events.FIRST_SEQUENCE + i, new=events.item(k, v={"S": "x"}))
        for i, k in enumerate(keys)
    ]
    path = tmp_path / "e.json"
    path.write_text(json.dumps(events.event(records)))
    code = main(["replay", str(path), "--redis", "fakeredis"])
    return code, capsys.readouterr().out


def test_replay_exits_1_when_a_record_is_reported_and_says_the_key_schema_to_add(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')
    code, out = _replay_records(capsys, tmp_path, "users", {"userId": {"S": "ann"}, "at": {"N": "1"}})
    assert code == 1
    assert """add it to KEY_SCHEMA: KEY_SCHEMA='{"users": ["at", "userId"]}'""" in out
    assert "1 record(s) reported as not applied" in out


def test_replay_of_a_one_attribute_key_needs_no_key_schema(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("KEY_SCHEMA", '{"orders": ["pk", "sk"]}')  # users is not listed
    code, out = _replay_records(capsys, tmp_path, "users", {"userId": {"S": "ann"}})
    assert code == 0
    assert 'batch response: {"batchItemFailures": []}' in out
    assert "users-ann: item" in out
