"""A request id for every HTTP request: on its log lines and in `X-Request-Id`.

A trusted proxy's well-formed `X-Request-Id` is kept, so that the proxy's log and kanal's
tell of the same request with the same id; anyone else's is replaced (a client could
otherwise forge ids into the logs).
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.base.logs import REQUEST_ID
from gateway.base.runtime import Runtime
from gateway.intake.webhooks import trusted_proxy

HEADER = "X-Request-Id"
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
REQUEST_ID_KEY = web.RequestKey("request_id", str)


def request_id_of(runtime: Runtime, request: web.Request) -> str:
    incoming = request.headers.get(HEADER, "")
    trusted = runtime.settings.server.trusted_proxies
    if (
        trusted
        and request.remote
        and trusted_proxy(request.remote, trusted)
        and WELL_FORMED.fullmatch(incoming)
    ):
        return incoming
    return uuid.uuid4().hex


def request_id_middleware(runtime: Runtime) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request_id_of(runtime, request)
        request[REQUEST_ID_KEY] = request_id
        token = REQUEST_ID.set(request_id)
        try:
            return await handler(request)
        finally:
            REQUEST_ID.reset(token)

    return middleware


async def send_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer carries the id, errors and streamed files too."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        response.headers[HEADER] = request_id
