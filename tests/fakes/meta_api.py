"""A fake Meta Graph API (Send API + attachment CDN) on 127.0.0.1.

    async with FakeMetaGraph(PAGE_TOKEN) as graph:
        url = graph.add_cdn_file("sampah.jpg", JPEG, "image/jpeg")
        await session.post(f"{graph.graph_url}/me/messages", params={"access_token": …}, json=…)

`POST /v21.0/me/messages` checks `access_token` (query or body; Graph error 190 when wrong)
and the body shape kanal sends to answer a citizen: `recipient.id`, `message.text` of 1 to
2000 characters, `messaging_type` "RESPONSE" (Graph error 100 otherwise). Accepted sends
are recorded in `sent`. Files added with `add_cdn_file` are served under `/cdn/…` like
the short-lived `fbcdn.net` URLs that webhook attachments point to.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["GRAPH_VERSION", "FakeMetaGraph"]

GRAPH_VERSION = "v21.0"


def _graph_error(message: str, code: int, status: int = 400, **extra: Any) -> web.Response:
    error = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGhIjK",
        **extra,
    }
    return web.json_response({"error": error}, status=status)


class FakeMetaGraph(LoopbackServer):
    """Send API for one page access token, plus a CDN. See the module docstring."""

    def __init__(self, page_token: str) -> None:
        self.page_token = page_token
        #: every POST to the Send API, as (query, body) — refused ones included
        self.requests: list[tuple[dict[str, str], Any]] = []
        #: accepted sends, as the JSON body sent
        self.sent: list[dict[str, Any]] = []
        self.cdn: dict[str, tuple[bytes, str]] = {}
        self.cdn_hits: list[str] = []
        self._mids = itertools.count(1)
        super().__init__()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return self.root

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/{GRAPH_VERSION}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post(f"/{GRAPH_VERSION}/me/messages", self._send)
        app.router.add_get("/cdn/{name:.+}", self._cdn)

    # ------------------------------------------------------------------ test controls

    def add_cdn_file(self, name: str, data: bytes, content_type: str) -> str:
        """Serve `data` at `/cdn/<name>`; returns the URL to put in a webhook payload."""
        self.cdn[name] = (data, content_type)
        return f"{self.base_url}/cdn/{name}"

    # ------------------------------------------------------------------ the API

    async def _send(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError:
            body = None
        self.requests.append((query, body))
        token = query.get("access_token") or (body or {}).get("access_token")
        if not token or token != self.page_token:
            return _graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        if not isinstance(body, dict):
            return _graph_error("(#100) The parameter recipient is required", 100)
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not isinstance(recipient.get("id"), str | int):
            return _graph_error("(#100) The parameter recipient is required", 100)
        if body.get("messaging_type") != "RESPONSE":
            return _graph_error("(#100) Param messaging_type must be one of {RESPONSE}", 100)
        message = body.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str) or not text:
            return _graph_error("(#100) The parameter message[text] is required", 100)
        if len(text) > 2000:
            return _graph_error("(#100) Length of param message[text] must be at most 2000", 100)
        self.sent.append(body)
        return web.json_response(
            {"recipient_id": str(recipient["id"]), "message_id": f"m_fake_{next(self._mids)}"}
        )

    async def _cdn(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.cdn_hits.append(name)
        if name not in self.cdn:
            return web.Response(status=404, text="URL signature expired")
        data, content_type = self.cdn[name]
        return web.Response(body=data, content_type=content_type)
