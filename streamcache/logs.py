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
        handler = self._direct_handler() if _RESERVED.isdisjoint(fields) else None
        line = self._line(handler, message, fields, sys._getframe(1)) if handler else None
        if handler is None or line is None:
            self._logger.info(message, extra=dict(fields), stacklevel=3)  # location: our caller
            return
        with handler.lock or nullcontext():
            try:
                handler.stream.write(line + handler.terminator)
                handler.flush()
            except Exception:  # as StreamHandler.emit: logging never raises into the caller
                handler.handleError(logging.makeLogRecord({"msg": message}))

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

    def _line(
        self,
        handler: logging.StreamHandler[Any],
        message: str,
        fields: Mapping[str, object],
        caller: FrameType,
    ) -> str | None:
        """Powertools' formatter's output for this record; None when a format needs what is not here."""
        formatter = handler.formatter
        assert isinstance(formatter, LambdaPowertoolsFormatter)
        created = time.time()
        msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord
        record = {
            "name": self._std.name,
            "msg": message,
            "levelname": "INFO",
            "levelno": logging.INFO,
            "funcName": caller.f_code.co_name,
            "lineno": caller.f_lineno,
            "created": created,
            "msecs": msecs,
        }
        record["asctime"] = self._timestamp(formatter, created, msecs)
        log: dict[str, Any] = {}
        for keys in (formatter.log_format, formatter.thread_safe_get_current_keys()):
            for key, value in keys.items():
                if value and key in _RESERVED:
                    if not isinstance(value, str):
                        return None  # Powertools refuses it: let it say so
                    try:
                        log[key] = value % record
                    except (KeyError, TypeError, ValueError):
                        return None  # names another record attribute: the full path has it
                else:
                    log[key] = value
        log.update(fields)
        log["message"] = _message(formatter, message)
        if formatter.serialize_stacktrace:
            log.pop("stack_trace", None)  # Powertools sets it to the record's traceback: none here
        log["xray_trace_id"] = formatter._get_latest_trace_id()
        return formatter.serialize(log={k: v for k, v in log.items() if v is not None})


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
