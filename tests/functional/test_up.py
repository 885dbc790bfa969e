"""``up``: a boto3 write through the printed endpoint reaches the local HTTP reader via the stream; Ctrl-C
stops everything it started."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis

import streamcache
from streamcache.cli import main
from streamcache.read.cache import default_cache, reset_default_cache

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0


@dataclass
class Up:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    output: list[str]
    exports: dict[str, str]
    reader: str

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output)
                continue
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {self.output}")


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def start_up(*argv: str) -> Up:
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "KEY_SCHEMA", "DYNAMODB_ENDPOINT_URL")
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "streamcache", "up", "--port", "0", "--redis", "redis-server", *argv],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    up = Up(process, lines, output, {}, "")
    up.wait_for("ready (Ctrl-C to stop)")
    for line in output:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            up.exports[name] = value.strip("'")
        if line.startswith("reader: "):
            up.reader = line.split()[1].split("/items/")[0]
    return up


@pytest.fixture
def up() -> Iterator[Up]:
    started = start_up("--table", "orders", "--key", "pk:S,sk:N", "--table", "users", "--key", "id:S")
    yield started
    if started.process.poll() is None:  # the test failed before its own SIGINT
        started.process.send_signal(signal.SIGINT)
        started.process.wait(timeout=30)


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def read_until(url: str, wanted: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, body = get(url)
        if all(body.get(k) == v for k, v in wanted.items()):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered {wanted}; last {body}")


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def test_a_write_through_the_printed_endpoint_reaches_the_http_reader_through_the_stream(
    up: Up, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "REDIS_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "KEY_SCHEMA"):
        assert name in up.exports, up.output
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=up.exports["AWS_ENDPOINT_URL_DYNAMODB"],
        region_name=up.exports["AWS_REGION"],
        aws_access_key_id=up.exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=up.exports["AWS_SECRET_ACCESS_KEY"],
    )
    url = f"{up.reader}/items/orders?pk=u1&sk=42"
    dynamodb.put_item(TableName="orders", Item={"pk": {"S": "u1"}, "sk": {"N": "42"}, "v": {"S": "one"}})
    first = read_until(url, {"source": "cache"})  # filled by a read, or written by the invalidator
    assert first["item"] == {"pk": "u1", "sk": 42, "v": "one"}

    # Only the stream can change a cached "one" into "two": the reader serves the cache while it holds it.
    dynamodb.put_item(TableName="orders", Item={"pk": {"S": "u1"}, "sk": {"N": "42"}, "v": {"S": "two"}})
    read_until(url, {"source": "cache", "item": {"pk": "u1", "sk": 42, "v": "two"}})

    # With the printed exports alone, the library reads the same entry from the cache.
    for name, value in up.exports.items():
        monkeypatch.setenv(name, value)
    reset_default_cache()
    try:
        orders = streamcache.CachedTable(boto3.resource("dynamodb").Table("orders"))
        item = {"pk": "u1", "sk": Decimal(42), "v": "two"}
        assert orders.get_item(Key={"pk": "u1", "sk": 42}) == {"Item": item}
        assert (default_cache().counters.hits, default_cache().counters.misses) == (1, 0)
    finally:
        reset_default_cache()
    assert "record(s) applied" in up.wait_for("stream: ")  # the activity line

    # The second table (hash key only) works the same way; the Function URL's refusals come through as such.
    dynamodb.put_item(TableName="users", Item={"id": {"S": "a-b"}, "name": {"S": "Ada"}})
    read_until(f"{up.reader}/items/users?id=a-b", {"found": True, "item": {"id": "a-b", "name": "Ada"}})
    assert get(f"{up.reader}/items/orders?pk=u1")[0] == 400
    assert get(f"{up.reader}/items/secrets?id=1")[0] == 403

    # A table created later, with a stream, is consumed too: its write reaches Redis.
    later = {"AttributeName": "id", "AttributeType": "S"}
    dynamodb.create_table(
        TableName="later",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[later],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.put_item(TableName="later", Item={"id": {"S": "x"}})
    cache = redis.Redis.from_url(up.exports["REDIS_URL"])
    try:
        deadline = time.monotonic() + DEADLINE_S
        while cache.get("later-x") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (cache.get("later-x") or b"")[:1] == b"I"
    finally:
        cache.close()

    # The printed REDIS_URL is the cache the pipeline fills: inspect sees the invalidator's entry.
    assert main(["inspect", "orders", "pk=u1", "sk=42"]) == 0
    assert '"two"' in capsys.readouterr().out

    children = children_of(up.process.pid)
    assert children, "up started no redis-server"
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=30) == 0
    assert "stopped: " in "".join(up.output)
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert refused(up.exports["AWS_ENDPOINT_URL_DYNAMODB"]) and refused(up.reader)
    assert refused(up.exports["REDIS_URL"].replace("redis://", "http://"))


def test_a_described_table_and_a_config_file_define_the_tables(tmp_path: Path) -> None:
    described = tmp_path / "describe.json"
    described.write_text(json.dumps({"Table": {
        "TableName": "events",
        "KeySchema": [{"AttributeName": "at", "KeyType": "RANGE"},
                      {"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"},
                                 {"AttributeName": "at", "AttributeType": "N"}],
    }}))  # fmt: skip
    config = tmp_path / "tables.json"
    config.write_text(json.dumps({"tables": {"users": "id:S"}}))
    started = start_up("--schema-from", str(described), "--config", str(config))
    try:
        assert started.exports["KEY_SCHEMA"] == '{"users": ["id"], "events": ["id", "at"]}'
        assert get(f"{started.reader}/items/events?id=x&at=1")[1] == {
            "found": False,
            "item": None,
            "source": "dynamodb",
        }
    finally:
        started.process.send_signal(signal.SIGTERM)  # kill's default: stops as cleanly as Ctrl-C
        assert started.process.wait(timeout=30) == 0
    assert "stopped: " in "".join(started.output)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "--table", "t"], "1 --table but 0 --key"),
        (["up", "--table", "t", "--key", "pk:X"], "key 'pk:X': write it as pk:S or pk:S,sk:N"),
        (["up", "--config", "/nonexistent.json"], "cannot read '/nonexistent.json'"),
    ],
)
def test_bad_table_definitions_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_port_in_use_is_one_line_and_stops_what_was_started() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        done = subprocess.run(
            [sys.executable, "-m", "streamcache", "up", "--port", str(port), "--redis", "redis-server"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        f"python -m streamcache up: error: cannot serve the reader on 127.0.0.1:{port} "
        "(Address already in use): pass --port\n"
    )
    redis_port = re.search(r"redis-server started on port (\d+)", done.stdout)
    assert redis_port is not None and refused(f"http://127.0.0.1:{redis_port.group(1)}/")
