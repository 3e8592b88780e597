"""aiohttp logs every malformed request (a NUL in a header, a bad request line…) at ERROR
with a full traceback: anyone could fill the log without a token. Those become one INFO
line naming the client and the kind of error; real failures keep their ERROR traceback."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOG = logging.getLogger("aiohttp.server")


class MalformedRequests(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or (exc.code or 400) >= 500:
            return True
        if not SERVER_LOG.isEnabledFor(logging.INFO):
            return False
        client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg = "malformed HTTP request from %s refused (%s, %s)"
        record.args = (client, exc.code or 400, type(exc).__name__)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def quiet_malformed_requests() -> None:
    """Install the filter once per process (every app shares aiohttp's server logger)."""
    if not any(isinstance(f, MalformedRequests) for f in SERVER_LOG.filters):
        SERVER_LOG.addFilter(MalformedRequests())
