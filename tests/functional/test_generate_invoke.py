"""generate-event output round-trips through replay and invoke; sample reader events answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamcache.cli import main

ROOT = Path(__file__).resolve().parents[2]
ITEM = '{"status": "NEW", "total": 19.90, "tags": ["a", "b"]}'


def generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> Path:
    assert main(["generate-event", *argv]) == 0
    path = tmp_path / f"{argv[0]}.json"
    path.write_text(capsys.readouterr().out)
    return path


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("KEY_SCHEMA", raising=False)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("ALLOWED_TABLES", raising=False)
    return redis_url


@pytest.mark.parametrize(
    ("kind", "holds"),
    [
        ("insert", 'item version=1100000000017454423009 ttl=3600 {"pk": {"S": "u1"}, "sk": {"N": "42"}, '
                   '"status": {"S": "NEW"}, "tags": {"L": [{"S": "a"}, {"S": "b"}]}, '
                   '"total": {"N": "19.90"}}'),
        ("modify", 'item version=1100000000017454423009'),
        ("remove", "not found (tombstone) version=1100000000017454423009"),
        ("ttl", "not found (tombstone) version=1100000000017454423009"),
    ],
)  # fmt: skip
def test_generated_stream_events_replay_into_the_cache(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, local_env: str, kind: str, holds: str
) -> None:
    path = generate(capsys, tmp_path, kind, "--table", "orders", "--key", "pk=u1,sk=42", "--item", ITEM)
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'batch response: {"batchItemFailures": []}' in out
    assert f"orders-u1-42: {holds}" in out


def test_a_ttl_event_is_a_service_removal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    record = json.loads(generate(capsys, tmp_path, "ttl", "--table", "t", "--key", "id=9").read_text())[
        "Records"
    ][0]
    assert record["eventName"] == "REMOVE"
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert record["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/")


def test_keys_only_view_invalidates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, local_env: str
) -> None:
    path = generate(
        capsys, tmp_path, "modify", "--table", "orders", "--key", "pk=u1,sk=42", "--view", "KEYS_ONLY"
    )
    assert "NewImage" not in path.read_text()
    assert main(["replay", str(path)]) == 0
    assert "orders-u1-42: invalidated" in capsys.readouterr().out


def test_generated_reader_events_read_what_the_invalidator_cached(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, local_env: str
) -> None:
    insert = generate(capsys, tmp_path, "insert", "--table", "orders", "--key", "pk=u1,sk=42", "--item", ITEM)
    assert main(["invoke", "invalidator", "--event", str(insert)]) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}

    direct = generate(capsys, tmp_path, "reader", "--table", "orders", "--key", "pk=u1,sk=42")
    assert main(["invoke", "reader", "--event", str(direct)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == {
        "found": True,
        "source": "cache",
        "item": {"pk": "u1", "sk": 42, "status": "NEW", "total": 19.9, "tags": ["a", "b"]},
    }

    url = generate(capsys, tmp_path, "function-url", "--table", "orders", "--key", "pk=u1,sk=42")
    assert main(["invoke", "reader", "--event", str(url)]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["source"] == "cache"


@pytest.mark.parametrize("sample", ["direct.json", "function-url.json"])
def test_sample_reader_events_answer_not_found_from_an_empty_table(
    capsys: pytest.CaptureFixture[str], local_env: str, sample: str
) -> None:
    assert main(["invoke", "reader", "--event", str(ROOT / "events" / "reader" / sample)]) == 0
    answer = json.loads(capsys.readouterr().out)
    body = json.loads(answer["body"]) if "body" in answer else answer
    assert body == {"found": False, "item": None, "source": "dynamodb"}
    assert answer.get("statusCode", 404) == 404


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate-event", "insert", "--table", "orders", "--key", "pk=u1"], "do not match the table's key"),
        (
            ["generate-event", "insert", "--table", "t", "--key", "id=1", "--item", "[1]"],
            "must be a JSON object",
        ),
        (["invoke", "reader", "--event", "/nonexistent.json"], "cannot read '/nonexistent.json'"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.delenv("KEY_SCHEMA", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
