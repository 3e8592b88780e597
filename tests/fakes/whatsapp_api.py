"""A fake WhatsApp Business Cloud API (Graph) on 127.0.0.1, strict the way Meta is.

    async with FakeWhatsAppGraph(TOKEN, numbers={"1065…"}) as graph:
        media_id = graph.add_media(JPEG, "image/jpeg")
        graph.citizen_wrote("6281234567890", at)     # opens the 24-hour window

- Every call needs `Authorization: Bearer <token>` (Graph error 190, HTTP 401 otherwise)
  and a known API version in the path (error 2500 otherwise).
- `GET /{version}/{media-id}` answers `{url, mime_type, sha256, file_size, id}`; the URL
  (under `/lookaside/…`, like lookaside.fbsbx.com) needs the same bearer header and lapses
  after `url_ttl_s` seconds of `clock()`, or at once with `expire_urls()` (then 404).
- `POST /{version}/{phone-number-id}/messages` takes `type` "text" only within 24 hours of
  the citizen's last message (`citizen_wrote`), else error 131047 "Re-engagement message";
  `type` "template" only for templates added with `approve_template(name, language)`
  (error 132001 otherwise). Accepted sends are recorded in `sent` and answered with a wamid.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["VERSIONS", "FakeWhatsAppGraph"]

VERSIONS = ("v21.0",)
WINDOW = timedelta(hours=24)


def _error(message: str, code: int, status: int = 400, **extra: Any) -> web.Response:
    error = {"message": message, "type": "OAuthException", "code": code, **extra}
    error["fbtrace_id"] = "AbCdEfGhIjK"
    return web.json_response({"error": error}, status=status)


class FakeWhatsAppGraph(LoopbackServer):
    def __init__(
        self,
        token: str,
        numbers: set[str] | frozenset[str],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        url_ttl_s: float = 300.0,
    ) -> None:
        self.token = token
        self.numbers = frozenset(numbers)
        self.clock = clock
        self.url_ttl_s = url_ttl_s
        self.lapse_next = 0  # how many of the next URLs handed out have lapsed already
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_sha256: dict[str, str] = {}  # a digest to announce instead of the true one
        self.urls: dict[str, tuple[str, datetime]] = {}  # url key → (media id, issued at)
        self.lookups: list[str] = []  # media ids asked for
        self.downloads: list[str] = []  # url keys fetched successfully
        self.last_inbound: dict[str, datetime] = {}  # wa_id → when the citizen last wrote
        self.templates: set[tuple[str, str]] = set()
        self.requests: list[tuple[str, Any]] = []  # (phone number id, body), refused included
        self.sent: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        super().__init__()

    # -- test controls

    @property
    def graph_url(self) -> str:
        return self.root

    def add_media(self, data: bytes, mime_type: str, *, sha256: str | None = None) -> str:
        media_id = str(1_000_000_000_000_000 + next(self._ids))
        self.media[media_id] = (data, mime_type)
        if sha256 is not None:
            self.media_sha256[media_id] = sha256
        return media_id

    def expire_urls(self) -> None:
        for key, (media_id, _) in list(self.urls.items()):
            self.urls[key] = (media_id, datetime(2000, 1, 1, tzinfo=UTC))

    def citizen_wrote(self, wa_id: str, at: datetime) -> None:
        self.last_inbound[wa_id] = at

    def approve_template(self, name: str, language: str) -> None:
        self.templates.add((name, language))

    # -- the API

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/lookaside/{key}", self._lookaside)
        app.router.add_get("/{version}/{media_id}", self._media_url)
        app.router.add_post("/{version}/{number}/messages", self._send)

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error("Invalid OAuth access token - Cannot parse access token", 190, 401)
        version = request.match_info.get("version")
        if version is not None and version not in VERSIONS:
            return _error(f"Unknown path components: /{version}", 2500)
        return None

    async def _media_url(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        media_id = request.match_info["media_id"]
        self.lookups.append(media_id)
        if media_id not in self.media:
            return _error(
                f"Unsupported get request. Object with ID '{media_id}' does not exist", 100
            )
        data, mime_type = self.media[media_id]
        key = f"{media_id}-{next(self._ids)}"
        issued = self.clock()
        if self.lapse_next > 0:
            self.lapse_next -= 1
            issued = datetime(2000, 1, 1, tzinfo=UTC)
        self.urls[key] = (media_id, issued)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.root}/lookaside/{key}",
                "mime_type": mime_type,
                "sha256": self.media_sha256.get(media_id, hashlib.sha256(data).hexdigest()),
                "file_size": len(data),
                "id": media_id,
            }
        )

    async def _lookaside(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="Unauthorized")
        key = request.match_info["key"]
        found = self.urls.get(key)
        if found is None or (self.clock() - found[1]).total_seconds() > self.url_ttl_s:
            return web.Response(status=404, text="URL signature expired")
        self.downloads.append(key)
        data, mime_type = self.media[found[0]]
        return web.Response(body=data, content_type=mime_type.split(";")[0])

    async def _send(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError:
            body = None
        self.requests.append((number, body))
        refused = self._refused(request)
        if refused is not None:
            return refused
        if number not in self.numbers:
            return _error(
                f"Unsupported post request. Object with ID '{number}' does not exist", 100
            )
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return _error("(#100) The parameter messaging_product is required.", 100)
        to = body.get("to")
        if not isinstance(to, str) or not to.isdigit():
            return _error("(#100) Invalid parameter: to", 100)
        kind = body.get("type", "text")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not 0 < len(text) <= 4096:
                return _error("(#100) Invalid parameter: text.body", 100)
            last = self.last_inbound.get(to)
            if last is None or self.clock() - last > WINDOW:
                return _error(
                    "(#131047) Re-engagement message",
                    131047,
                    error_data={
                        "messaging_product": "whatsapp",
                        "details": "Message failed to send because more than 24 hours have "
                        "passed since the customer last replied to this number.",
                    },
                )
        elif kind == "template":
            template = body.get("template") or {}
            language = (template.get("language") or {}).get("code")
            if (template.get("name"), language) not in self.templates:
                return _error("(#132001) Template name does not exist in the translation", 132001)
        else:
            return _error(f"(#100) Unsupported message type {kind!r}", 100)
        self.sent.append(body)
        wamid = f"wamid.FAKE{next(self._ids):08d}"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}],
            }
        )
