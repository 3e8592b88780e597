"""How kanal's log lines look: text for a terminal, or one JSON object per line for a log
collector, with the id of the HTTP request being handled when there is one."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

# Set by the web layer for the time a request is handled (gateway/web/request_ids.py).
REQUEST_ID: ContextVar[str | None] = ContextVar("kanal_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextLines(logging.Formatter):
    """The classic line, with `[request id]` after the logger while a request is handled."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = REQUEST_ID.get()
        if request_id is None:
            return text
        head, sep, rest = text.partition(": ")
        return f"{head} [{request_id}]{sep}{rest}"


class KanalHandler(logging.StreamHandler):
    """The handler `configure_logging` installs (and replaces when called again)."""


def configure_logging(level: int, log_format: Literal["text", "json"] = "text") -> None:
    """The root logger's one handler, on stderr, in the configured format. As
    logging.basicConfig, nothing changes when someone else (a test runner) set up handlers."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, KanalHandler)]
    if len(ours) != len(root.handlers):
        return
    for old in ours:
        root.removeHandler(old)
    handler = KanalHandler()
    handler.setFormatter(JsonLines() if log_format == "json" else TextLines(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
