"""Structured logs on stdlib logging: `msg key=value ...`, or one JSON object per line.

Why not a logging library: fields only need to reach the line. `bind(logger, controller=...)` gives a
logger whose calls take keyword fields; the text form works with any formatter (the fields are in
the message), and `JsonFormatter` emits them as separate JSON keys for log pipelines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any


class FieldLogger:
    """A logger with bound fields; `log.info("msg", key=value)` adds more for one line."""

    def __init__(self, logger: logging.Logger, fields: Mapping[str, Any]) -> None:
        self.logger = logger
        self.fields = {k: v for k, v in fields.items() if v is not None}

    def bind(self, **fields: Any) -> FieldLogger:
        return FieldLogger(self.logger, {**self.fields, **fields})

    def _log(self, level: int, msg: str, fields: Mapping[str, Any], exc_info: bool = False) -> None:
        if not self.logger.isEnabledFor(level):
            return
        merged = {**self.fields, **{k: v for k, v in fields.items() if v is not None}}
        text = msg + "".join(f" {k}={_fmt(v)}" for k, v in merged.items())
        self.logger.log(level, text, exc_info=exc_info, extra={"fields": merged, "msg_only": msg}, stacklevel=3)

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, fields)

    def exception(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, fields, exc_info=True)


def bind(logger: logging.Logger, **fields: Any) -> FieldLogger:
    return FieldLogger(logger, fields)


def _fmt(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' "=\n')) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, msg, the bound fields, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        extra: MutableMapping[str, Any] = record.__dict__
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": extra.get("msg_only", record.getMessage()),
        }
        for key, value in (extra.get("fields") or {}).items():
            out.setdefault(key, value if isinstance(value, int | float | bool) else str(value))
        if record.exc_info:
            out["error_trace"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure(level: int | str = logging.INFO, json_lines: bool = False) -> None:
    """Root logging for a runtime process: key=value text (default) or JSON lines on stderr."""
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
