"""A fake Telegram Bot API server on 127.0.0.1, for python-telegram-bot's `Bot(base_url=…)`.

    async with FakeTelegramApi(TOKEN) as fake:
        fake.add_update({"message": {...}})
        bot = Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url)

It behaves like the real API where kanal depends on it: parameters from the query string,
JSON, form or multipart bodies (PTB sends form fields whose values are JSON-encoded); a
wrong token answers 401 `{"ok": false, "error_code": 401, "description": "Unauthorized"}`;
`getUpdates` confirms every update below `offset`, honours `limit` (1–100) and long-polls
up to `timeout` seconds, and answers 409 while a webhook is set; `sendMessage` knows only
chats it has seen in updates (or `add_chat`) and refuses empty texts and texts over 4096
characters; `setWebhook` checks the secret token's alphabet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["FakeTelegramApi"]

BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Kanal DKI",
    "username": "kanal_dki_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_INT_PARAMS = {"offset", "limit", "timeout", "max_connections", "message_id"}
_JSON_PARAMS = {"allowed_updates", "reply_markup", "entities"}


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, **extra: Any) -> web.Response:
    body = {"ok": False, "error_code": status, "description": description, **extra}
    return web.json_response(body, status=status)


class FakeTelegramApi(LoopbackServer):
    """The Bot API for one bot token. See the module docstring for the behaviour."""

    def __init__(self, token: str) -> None:
        self.token = token
        #: updates not yet confirmed by an offset, in update_id order
        self.updates: list[dict[str, Any]] = []
        #: every Bot API call that arrived with the right token, as (method, params)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        #: accepted sendMessage calls, as the params sent
        self.sent: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self.chats: set[int | str] = set()
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id → (file_path, bytes)
        self._update_ids = itertools.count(100001)
        self._message_ids = itertools.count(9001)
        self._arrived = asyncio.Event()  # set whenever an update is queued
        super().__init__()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """For `Bot(base_url=…)`: PTB appends the token."""
        return f"{self.root}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root}/file/bot"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    # ------------------------------------------------------------------ test controls

    def add_update(self, update: dict[str, Any]) -> int:
        """Queue an update (an `update_id` is given when missing); returns its update_id."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
            chat = (update.get(key) or {}).get("chat") or {}
            if "id" in chat:
                self.chats.add(chat["id"])
        self.updates.append(update)
        self.updates.sort(key=lambda u: u["update_id"])
        self._arrived.set()
        return int(update["update_id"])

    def add_chat(self, chat_id: int | str) -> None:
        self.chats.add(chat_id)

    def add_file(self, file_id: str, data: bytes, file_path: str | None = None) -> None:
        self.files[file_id] = (file_path or f"photos/file_{len(self.files)}.jpg", data)

    # ------------------------------------------------------------------ the API

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        try:
            params = await _params(request)
        except ValueError as exc:
            return _error(400, f"Bad Request: {exc}")
        self.calls.append((method, params))
        handler = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "getFile": self._get_file,
            "sendMessage": self._send_message,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
        }.get(method)
        if handler is None:
            return _error(404, "Not Found")
        return await handler(params)

    async def _get_me(self, params: dict[str, Any]) -> web.Response:
        return _ok(BOT_USER)

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook is not None:
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if not 1 <= limit <= 100:
            limit = 100  # Telegram clamps silently
        if offset:
            # An offset confirms every update before it: they are never sent again.
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        # Telegram does not keep updates of types the bot did not ask for.
        allowed = params.get("allowed_updates")
        deadline = time.monotonic() + timeout
        while True:
            self.updates = [u for u in self.updates if _wanted(u, allowed)]
            ready = self.updates[:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0:
                return _ok(ready)
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def _get_file(self, params: dict[str, Any]) -> web.Response:
        file_id = str(params.get("file_id") or "")
        if file_id not in self.files:
            return _error(400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        return _ok(
            {
                "file_id": file_id,
                "file_unique_id": f"u{abs(hash(file_id)) % 10**8}",
                "file_size": len(data),
                "file_path": path,
            }
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        for path, data in self.files.values():
            if path == request.match_info["path"]:
                return web.Response(body=data, content_type="application/octet-stream")
        return _error(404, "Not Found")

    async def _send_message(self, params: dict[str, Any]) -> web.Response:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if isinstance(chat_id, str) and re.fullmatch(r"-?\d+", chat_id):
            chat_id = int(chat_id)
        if chat_id not in self.chats:
            return _error(400, "Bad Request: chat not found")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        self.sent.append(params)
        chat = (
            {"id": chat_id, "type": "private"}
            if isinstance(chat_id, int) and chat_id > 0
            else {"id": chat_id, "type": "channel", "title": str(chat_id)}
        )
        return _ok(
            {
                "message_id": next(self._message_ids),
                "from": BOT_USER,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
        )

    async def _set_webhook(self, params: dict[str, Any]) -> web.Response:
        url = params.get("url")
        if not url:
            self.webhook = None
            return web.json_response(
                {"ok": True, "result": True, "description": "Webhook was deleted"}
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = params
        return web.json_response({"ok": True, "result": True, "description": "Webhook was set"})

    async def _delete_webhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = None
        return web.json_response({"ok": True, "result": True, "description": "Webhook was deleted"})

    async def _get_webhook_info(self, params: dict[str, Any]) -> web.Response:
        hook = self.webhook or {}
        return _ok(
            {
                "url": hook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self.updates),
            }
        )


def _wanted(update: dict[str, Any], allowed: Any) -> bool:
    if not allowed:
        return True
    return any(key in update for key in allowed)


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key, value in list(params.items()):
        if not isinstance(value, str):
            continue
        if key in _INT_PARAMS:
            params[key] = int(value)
        elif key in _JSON_PARAMS:
            params[key] = json.loads(value)
    return params
