"""The functions' Logger writes the lines Powertools' default would (same fields, same values)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from streamcache import logs
from streamcache.logs import InfoLine, dumps, message_or_json, powertools_logger


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


# InfoLine: the per-batch line written without the standard library's LogRecord machinery.

FIELDS = {"records": 3, "applied": 2, "table": "orders-ü", "big": 2**70, "none": None}


def new_logger(stream: io.StringIO, propagate: bool = False, **options: Any) -> Logger:
    """A Powertools Logger of its own (a service name is configured once per process) writing to ``stream``.

    Not propagating by default: pytest's log capture on the root logger would
    see the record too, and InfoLine (rightly) steps aside for it.
    """
    logger = Logger(
        service=f"svc-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(stream), **options
    )
    logging.getLogger(logger.name).propagate = propagate
    return logger


def written(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().split("\n") if line]


def both(logger: Logger, line: InfoLine, message: str, fields: dict[str, Any]) -> None:
    line(message, fields), logger.info(message, extra=fields)  # one source line: the same location


def assert_same_line(ours: dict[str, Any], default: dict[str, Any]) -> None:
    assert list(ours) == list(default)  # same keys, same order
    stamps = ours.pop("timestamp"), default.pop("timestamp")
    assert re.sub(r"\d", "0", stamps[0]) == re.sub(r"\d", "0", stamps[1])  # same format
    assert ours == default


OPTIONS = [
    {},
    {"utc": True},
    {"use_rfc3339": True},
    {"datefmt": "%H:%M:%S.%F"},
    {"log_record_order": ["message", "level", "timestamp"]},
    {"xray_trace_id": None},
    {"tenant": "t-1"},  # a key given to the Logger
]


@contextmanager
def configured(options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Logger]:
    """A Logger set up with ``options``, appended and thread-local keys, in a traced invocation.

    Made in the test itself: pytest adds its capture handlers to a logger made in a fixture's setup.
    """
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    logger = new_logger(io.StringIO(), **options)
    logger.append_keys(request="r-1")
    logger.thread_safe_append_keys(thread_key="k")
    try:
        yield logger
    finally:
        logger.thread_safe_clear_keys()


def stream_of(logger: Logger) -> io.StringIO:
    stream = logger.registered_handler.stream
    assert isinstance(stream, io.StringIO)
    return stream


def pending_and_info(logger: Logger, pending: logs.PendingLine, message: str, fields: dict[str, Any]) -> None:
    pending(fields), logger.info(message, extra=fields)  # one source line: the same location


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("message", ["batch applied", '{"event": "x"}'])
def test_info_line_and_pending_line_write_what_logger_info_writes(
    options: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with configured(options, monkeypatch) as logger:
        line = InfoLine(logger)
        assert line._direct_handler() is not None  # the fast path is the one under test
        both(logger, line, message, FIELDS)
        # Prepared as the last line: from another source line; then the right guess; then other fields.
        for fields in (FIELDS, FIELDS, {**FIELDS, "records": 4}):
            pending = line.pending(message)
            pending.prepare()
            pending_and_info(logger, pending, message, fields)
    out = written(stream_of(logger))
    assert len(out) == 8 and out[6]["records"] == 4
    assert out[0]["location"] == f"both:{both.__code__.co_firstlineno + 1}"
    for ours, default in zip(out[::2], out[1::2], strict=True):
        if ours is not out[0]:
            assert ours["location"] == f"pending_and_info:{pending_and_info.__code__.co_firstlineno + 1}"
        assert_same_line(ours, default)


def test_info_line_steps_aside_for_what_it_does_not_reproduce() -> None:
    stream = io.StringIO()
    logger = new_logger(stream, process="%(process)d")  # a record attribute InfoLine does not build
    line = InfoLine(logger)
    fields = {**FIELDS, "location": "mine"}  # Powertools drops reserved names from the fields
    both(logger, line, "batch applied", fields)
    ours, default = written(stream)
    assert ours["process"] == str(os.getpid()) and "location" in ours and ours["location"] != "mine"
    assert_same_line(ours, default)


def test_info_line_writes_nothing_where_info_is_off_or_filtered() -> None:
    stream = io.StringIO()
    quiet = new_logger(stream, level="WARNING")
    InfoLine(quiet)("batch applied", FIELDS)
    filtered = new_logger(stream)
    filtered.addFilter(lambda record: False)
    InfoLine(filtered)("batch applied", FIELDS)
    assert stream.getvalue() == ""


def test_info_line_reaches_handlers_above_that_would_see_the_record(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    logger = new_logger(stream, propagate=True)
    InfoLine(logger)("batch applied", FIELDS)  # pytest's capture on the root logger sees it too
    (record,) = [r for r in caplog.records if r.name == logger.name]
    assert record.funcName == "test_info_line_reaches_handlers_above_that_would_see_the_record"
    (line,) = written(stream)
    assert line["message"] == "batch applied" and line["records"] == 3


def test_info_line_never_raises_when_the_stream_fails(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError("gone")

    InfoLine(new_logger(Broken()))("batch applied", FIELDS)
    assert "BrokenPipeError" in capsys.readouterr().err  # reported as logging reports it


@pytest.mark.parametrize("utc", [False, True])
def test_info_line_timestamps_across_seconds_are_the_formatters(
    utc: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    logger = new_logger(stream, utc=utc)
    line = InfoLine(logger)
    clock = iter([1700000000.5, 1700000000.999, 1700000001.25, 1700000000.0])  # back in time too
    monkeypatch.setattr(logs, "time", SimpleNamespace(time=lambda: next(clock), strftime=time.strftime))
    created = [1700000000.5, 1700000000.999, 1700000001.25, 1700000000.0]
    for _ in created:
        line("batch applied", FIELDS)
    formatter = logger.registered_formatter
    expected = [
        formatter.formatTime(logging.makeLogRecord({"created": c, "msecs": int((c - int(c)) * 1000) + 0.0}))
        for c in created
    ]
    assert [x["timestamp"] for x in written(stream)] == expected
    assert ",999" in expected[1] and ",250" in expected[2]  # milliseconds cut, never rounded up


# PendingLine: the line worked out ahead (while Redis runs a write), written when its fields are known.


def test_a_line_like_the_last_is_written_as_prepared_and_only_then(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    line = InfoLine(new_logger(stream))
    built_at_call: list[dict[str, Any]] = []
    preparing = False
    real = logs._line

    def counted(ahead: Any, fields: Any, func: str, lineno: int) -> str:
        if not preparing:
            built_at_call.append(dict(fields))
        return real(ahead, fields, func, lineno)

    monkeypatch.setattr(logs, "_line", counted)

    def write(fields: dict[str, Any]) -> int:
        nonlocal preparing
        before = len(built_at_call)
        pending = line.pending("batch applied")
        preparing = True
        pending.prepare()
        preparing = False
        pending(fields)  # every line from this one source line, but the last
        return len(built_at_call) - before  # 1: built when written; 0: as prepared

    assert write({"n": 1}) == 1  # nothing to guess from: built when written
    assert write({"n": 1}) == 0  # the last line's caller and fields: written as prepared
    assert write({"n": True}) == 1 and write({"n": 1.0}) == 1  # equal, but not in JSON
    assert write({"m": 0, "n": 1}) == 1 and write({"n": 1, "m": 0}) == 1  # other keys; another order
    pending = line.pending("batch applied")
    pending.prepare()
    pending({"n": 1, "m": 0})  # the same fields from another line
    out = written(stream)
    assert [x["n"] for x in out] == [1, 1, True, 1.0, 1, 1, 1] and [type(x["n"]) for x in out[2:4]] == [
        bool,
        float,
    ]
    assert list(out[4]) != list(out[5]) and out[6]["location"] != out[5]["location"]
    assert out[6]["location"].startswith("test_a_line_like_the_last_is_written_as_prepared_and_only_then:")


def test_a_prepared_line_carries_the_time_it_was_prepared(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    logger = new_logger(stream)
    line = InfoLine(logger)
    clock = iter([1700000000.25, 1700000009.75])
    monkeypatch.setattr(logs, "time", SimpleNamespace(time=lambda: next(clock), strftime=time.strftime))
    prepared = line.pending("batch applied")
    prepared.prepare()
    prepared(FIELDS)
    line.pending("batch applied")(FIELDS)  # not prepared: the time it is written
    stamps = [x["timestamp"] for x in written(stream)]
    formatter = logger.registered_formatter
    assert stamps == [
        formatter.formatTime(logging.makeLogRecord({"created": c, "msecs": int((c - int(c)) * 1000) + 0.0}))
        for c in (1700000000.25, 1700000009.75)
    ]


@pytest.mark.parametrize("prepare", [True, False])
def test_a_pending_line_steps_aside_as_info_line_does(
    prepare: bool, caplog: pytest.LogCaptureFixture
) -> None:
    stream = io.StringIO()
    logger = new_logger(stream, propagate=True)  # pytest's capture on the root logger would see it too
    pending = InfoLine(logger).pending("batch applied")
    if prepare:
        pending.prepare()
    pending(FIELDS)
    (record,) = [r for r in caplog.records if r.name == logger.name]
    assert record.funcName == "test_a_pending_line_steps_aside_as_info_line_does"
    (line,) = written(stream)
    assert line["message"] == "batch applied" and line["records"] == 3


def test_a_field_the_serializer_refuses_is_reported_never_raised(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    line = InfoLine(new_logger(stream))
    line("batch applied", {"bad": {("not", "a", "str"): 1}})  # logger.info reports it the same way
    assert "Logging error" in capsys.readouterr().err and stream.getvalue() == ""
    line("batch applied", {"n": [1]})
    line._last.items[0][1].append({("t",): 1})  # type: ignore[union-attr]  # the last line's fields, changed
    pending = line.pending("batch applied")
    pending.prepare()  # guesses them: what cannot be written now
    pending({"n": 2})
    assert [x["n"] for x in written(stream)] == [[1], 2]
