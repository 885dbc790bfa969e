"""The functions' Powertools ``Logger``: the same JSON lines, written for less.

Two of Powertools' own options, measured on the invalidator's per-batch line
(27 -> 21 us): orjson writes the line (the standard library's encoder on what
orjson refuses: integers past 64 bits, lone surrogates), and a message is
parsed as JSON only when it looks like JSON (Powertools tries every message,
and a failed parse raises and catches an exception per line).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from contextlib import nullcontext
from types import FrameType
from typing import Any, NamedTuple

import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.filters import SuppressFilter
from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS, LambdaPowertoolsFormatter

_RESERVED = frozenset(RESERVED_LOG_ATTRS)  # record attributes: never taken from a line's fields


def powertools_logger(default_service: str) -> Logger:
    """A Logger named by POWERTOOLS_SERVICE_NAME, else ``default_service``."""
    return Logger(
        service=os.environ.get("POWERTOOLS_SERVICE_NAME", default_service),
        json_serializer=dumps,
        json_deserializer=message_or_json,
    )


def dumps(log: Any) -> str:
    try:
        return orjson.dumps(log, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(log, default=str, separators=(",", ":"), ensure_ascii=False)  # as Powertools


def message_or_json(message: dict[Any, Any] | str | bool | int | float) -> Any:
    """What Powertools does with a message: a JSON object or array is logged as one; other text as is."""
    if isinstance(message, str) and message[:1] in ("{", "["):
        return json.loads(message)  # Powertools keeps the text when this raises
    return message


class InfoLine:
    """One hot INFO line, written as ``logger.info`` would write it, without the standard library's machinery.

    The invalidator writes one INFO line per batch. Through ``logger.info`` it
    cost about as much as a one-record batch's Redis round trip (make bench
    times both): most of it is the LogRecord (caller, thread and process
    lookups), the filters and the handler chain. This builds the same fields
    from the same formatter's state (key order, appended and thread-local
    keys, timestamp format, X-Ray trace id, serializer) and writes them to
    the same stream. Whatever it could not reproduce exactly goes through
    ``logger.info`` instead: a level that drops INFO, any filter, another
    handler or formatter, a handler further up that would also see the
    record (pytest's capture), log buffering, or a field named like a
    standard record attribute.
    """

    def __init__(self, logger: Logger) -> None:
        self._logger = logger
        self._std = logging.getLogger(logger.name)
        self._second: tuple[int, Any] = (-1, None)  # (epoch second, converter) of the parts below
        self._around_ms = ("", "")  # the default timestamp's text before and after the milliseconds
        self._last: _Written | None = None  # the last line written here: the likely next (``PendingLine``)

    def _timestamp(self, formatter: LambdaPowertoolsFormatter, created: float, msecs: float) -> str:
        """``formatter.formatTime``; the default format's text around the milliseconds kept for the second."""
        if formatter.datefmt or formatter.use_rfc3339_iso8601:
            return formatter.formatTime(_Stamp(created, msecs))  # type: ignore[arg-type]
        second = (int(created), formatter.converter)
        if second != self._second:
            struct = formatter.converter(created)
            head, tail = formatter.default_time_format.split(formatter.custom_ms_time_directive, 1)
            self._around_ms = time.strftime(head, struct), time.strftime(tail, struct)
            self._second = second
        return "%s%03d%s" % (self._around_ms[0], msecs, self._around_ms[1])  # noqa: UP031 (as formatTime)

    def __call__(self, message: str, fields: Mapping[str, object]) -> None:
        self._write(self._ahead(message), message, fields, sys._getframe(1))

    def pending(self, message: str) -> PendingLine:
        """The next line, whose every part but its fields and location may be worked out ahead."""
        return PendingLine(self, message)

    def _ahead(self, message: str) -> _Ahead | None:
        """The line as far as it is known before its fields and caller; None: ``logger.info`` writes it."""
        handler = self._direct_handler()
        if handler is None:
            return None
        formatter = handler.formatter
        assert isinstance(formatter, LambdaPowertoolsFormatter)
        created = time.time()
        msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord
        record: dict[str, Any] = {
            "name": self._std.name,
            "msg": message,
            "levelname": "INFO",
            "levelno": logging.INFO,
            "funcName": "",  # the caller's: known when the line is written
            "lineno": 0,
            "created": created,
            "msecs": msecs,
            "asctime": self._timestamp(formatter, created, msecs),
        }
        formatted = _formatted(formatter, record)
        if formatted is None:
            return None
        log, located = formatted
        trace_id = formatter._get_latest_trace_id()
        return _Ahead(handler, formatter, record, log, located, _message(formatter, message), trace_id)

    def _write(
        self, ahead: _Ahead | None, message: str, fields: Mapping[str, object], caller: FrameType
    ) -> None:
        if ahead is None or not _RESERVED.isdisjoint(fields):
            self._logger.info(
                message, extra=dict(fields), stacklevel=4
            )  # location: whoever asked for the line
            return
        written = _written(caller, fields)
        try:
            line = _line(ahead, fields, written.func, written.lineno)
        except Exception:  # as Handler.emit: what the serializer refuses is reported, never raised
            ahead.handler.handleError(logging.makeLogRecord({"msg": message}))
            return
        _emit(ahead.handler, line, message)
        self._last = written

    def _direct_handler(self) -> logging.StreamHandler[Any] | None:
        """The one handler that would write the line, when nothing else would see or change it."""
        std = self._std
        if not std.isEnabledFor(logging.INFO) or std.filters or getattr(self._logger, "_buffer_config", None):
            return None
        if len(std.handlers) != 1:
            return None
        handler = std.handlers[0]
        if (
            type(handler) is not logging.StreamHandler
            or handler.filters
            or handler.level > logging.INFO
            or type(handler.formatter) is not LambdaPowertoolsFormatter
        ):
            return None
        return handler if _suppressed_above(std) else None


class PendingLine:
    """One invocation's line: ``prepare`` works it out ahead of its fields, the call writes it.

    The invalidator prepares its per-batch line while Redis runs a one-record
    batch's write, so that round trip hides the line's cost; the line then
    carries the time the write was sent. A quiet stream's lines differ only
    in their time: ``prepare`` writes out the whole line as if its caller and
    fields were the last line's, and the call writes that text when they are
    (same keys in the same order, equal values of the same types). Otherwise,
    or unprepared, the call does the rest, as ``InfoLine`` does.
    """

    __slots__ = ("_ahead", "_guessed", "_info", "_message", "_prepared")

    def __init__(self, info: InfoLine, message: str) -> None:
        self._info = info
        self._message = message
        self._prepared = False
        self._ahead: _Ahead | None = None
        self._guessed: tuple[_Written, str] | None = None  # the last line's caller and fields; the line if so

    def prepare(self) -> None:
        ahead = self._info._ahead(self._message)
        guess = self._info._last
        self._ahead, self._prepared = ahead, True
        if ahead is not None and guess is not None:
            try:  # it serialized before, but a value in it may have changed since
                self._guessed = guess, _line(ahead, dict(guess.items), guess.func, guess.lineno)
            except Exception:  # never raised while Redis runs a write: the call builds and reports it
                self._guessed = None

    def __call__(self, fields: Mapping[str, object]) -> None:
        caller = sys._getframe(1)
        guessed = self._guessed
        if guessed is not None and self._ahead is not None and _same(guessed[0], caller, fields):
            _emit(self._ahead.handler, guessed[1], self._message)
            return
        ahead = self._ahead if self._prepared else self._info._ahead(self._message)
        self._info._write(ahead, self._message, fields, caller)


class _Ahead(NamedTuple):
    """A line's parts known before its fields and caller (see ``InfoLine._ahead``)."""

    handler: logging.StreamHandler[Any]
    formatter: LambdaPowertoolsFormatter
    record: dict[str, Any]  # what the formats read; the caller's name and line filled in when written
    log: dict[str, Any]  # the formatter's keys, in order, formatted
    located: dict[str, str]  # the keys whose format names the caller, formatted again when written
    message: Any
    xray_trace_id: str | None


class _Written(NamedTuple):
    """What a line was written with besides ``_Ahead``: its caller's name and line, its fields."""

    func: str
    lineno: int
    items: tuple[tuple[str, object], ...]
    types: tuple[type, ...]  # 1, 1.0 and True are equal, but not in JSON


def _formatted(
    formatter: LambdaPowertoolsFormatter, record: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The formatter's keys, in order, formatted from ``record``, and those whose format names the caller.

    None when a format needs what ``record`` lacks: the full path has it.
    """
    log: dict[str, Any] = {}
    located: dict[str, str] = {}  # key -> its format
    for keys in (formatter.log_format, formatter.thread_safe_get_current_keys()):
        for key, value in keys.items():
            located.pop(key, None)  # a thread-local key given again replaces the format's
            if value and key in _RESERVED:
                if not isinstance(value, str):
                    return None  # Powertools refuses it: let it say so
                try:
                    log[key] = value % record
                except (KeyError, TypeError, ValueError):
                    return None  # names another record attribute
                if "%(funcName)" in value or "%(lineno)" in value:
                    located[key] = value
            else:
                log[key] = value
    return log, located


def _written(caller: FrameType, fields: Mapping[str, object]) -> _Written:
    return _Written(
        caller.f_code.co_name, caller.f_lineno, tuple(fields.items()), tuple(map(type, fields.values()))
    )


def _same(written: _Written, caller: FrameType, fields: Mapping[str, object]) -> bool:
    """Whether ``_written(caller, fields)`` would equal ``written`` (without building it)."""
    return (
        caller.f_lineno == written.lineno
        and caller.f_code.co_name == written.func
        and tuple(fields.items()) == written.items
        and tuple(map(type, fields.values())) == written.types
    )


def _emit(handler: logging.StreamHandler[Any], line: str, message: str) -> None:
    """``handler``'s ``emit`` for a formatted line."""
    with handler.lock or nullcontext():
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        except Exception:  # as StreamHandler.emit: logging never raises into the caller
            handler.handleError(logging.makeLogRecord({"msg": message}))


def _line(ahead: _Ahead, fields: Mapping[str, object], func: str, lineno: int) -> str:
    """Powertools' formatter's output for what ``ahead`` describes, written from ``func`` at ``lineno``."""
    log = dict(ahead.log)
    if ahead.located:
        record = {**ahead.record, "funcName": func, "lineno": lineno}
        for key, form in ahead.located.items():
            log[key] = form % record
    log.update(fields)
    log["message"] = ahead.message
    if ahead.formatter.serialize_stacktrace:
        log.pop("stack_trace", None)  # Powertools sets it to the record's traceback: none here
    log["xray_trace_id"] = ahead.xray_trace_id
    return ahead.formatter.serialize(log={k: v for k, v in log.items() if v is not None})


class _Stamp(NamedTuple):
    """What the formatter's ``formatTime`` reads of a record."""

    created: float
    msecs: float


def _suppressed_above(std: logging.Logger) -> bool:
    """Whether every handler the record would propagate to drops it (Powertools' SuppressFilter)."""
    parent = std.parent if std.propagate else None
    while parent is not None:
        for handler in parent.handlers:
            if handler.level <= logging.INFO and not any(
                isinstance(f, SuppressFilter) and f.logger in std.name for f in handler.filters
            ):
                return False
        parent = parent.parent if parent.propagate else None
    return True


def _message(formatter: LambdaPowertoolsFormatter, message: str) -> Any:
    """As the formatter's ``_extract_log_message`` for a plain message without arguments."""
    try:
        return formatter.json_deserializer(message)
    except (TypeError, ValueError):  # json.JSONDecodeError is a ValueError
        return message
