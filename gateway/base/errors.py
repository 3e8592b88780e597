"""JSON error bodies: {"error": {"code", "message", …}}, with a 4xx/5xx status."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def error_response(
    status: int, code: str, message: str, *, retry_after: int | None = None, **extra: Any
) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.json_response(
        {"error": {"code": code, "message": message, **extra}}, status=status, headers=headers
    )


class ApiError(Exception):
    """Raised inside handlers; the middleware turns it into an error response."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, **self.extra)
