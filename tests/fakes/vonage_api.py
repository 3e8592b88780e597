"""A fake Vonage (Nexmo) SMS API on 127.0.0.1.

    async with FakeVonageApi(API_KEY, API_SECRET) as vonage:
        config: channels.sms_vonage.api_base_url = vonage.base_url

`POST /sms/json` (form or JSON) answers like Vonage: always HTTP 200 with
`{"message-count": "N", "messages": [{"status": "0", "message-id": …, "to": …}]}` on
success; a per-message `status` with `error-text` otherwise — "2" missing parameters
(`api_key`, `api_secret`, `from`, `to`, `text`), "4" bad credentials, "3" invalid `to`
(digits only, international format without '+'), "1" throttled (via `throttle_next`).
`type=unicode` allows 70 characters per part instead of 160; texts over 6 parts are refused
("3", too long). Accepted messages are recorded in `sent`.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["FakeVonageApi"]


def _one(status: str, error: str, to: str = "") -> web.Response:
    return web.json_response(
        {"message-count": "1", "messages": [{"status": status, "error-text": error, "to": to}]}
    )


class FakeVonageApi(LoopbackServer):
    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.requests: list[dict[str, str]] = []
        self.sent: list[dict[str, str]] = []
        self._throttle = 0
        self._ids = itertools.count(0x0A0000001)
        super().__init__()

    @property
    def base_url(self) -> str:
        return self.root

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/sms/json", self._send)

    def throttle_next(self, times: int = 1) -> None:
        self._throttle += times

    async def _send(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            params: dict[str, Any] = json.loads(await request.read())
        else:
            params = dict(await request.post())
        params = {k: str(v) for k, v in params.items()}
        self.requests.append(params)
        missing = [k for k in ("api_key", "api_secret", "from", "to", "text") if not params.get(k)]
        if "api_key" in missing or "api_secret" in missing:
            return _one("2", f"Missing {missing[0]}")
        if (params["api_key"], params["api_secret"]) != (self.api_key, self.api_secret):
            return _one("4", "Bad Credentials")
        if missing:
            return _one("2", f"Missing {missing[0]}")
        to = params["to"]
        if not to.isdigit() or not 7 <= len(to) <= 15:
            return _one("3", "Invalid to address", to)
        if self._throttle:
            self._throttle -= 1
            return _one("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry", to)
        unicode = params.get("type") == "unicode"
        single, part = (70, 67) if unicode else (160, 153)
        text = params["text"]
        parts = 1 if len(text) <= single else -(-len(text) // part)
        if parts > 6:
            return _one("3", "Invalid Message: too long", to)
        self.sent.append(params)
        messages = [
            {
                "to": to,
                "message-id": f"{next(self._ids):X}",
                "status": "0",
                "remaining-balance": "10.0",
                "message-price": "0.03",
                "network": "51010",
            }
            for _ in range(parts)
        ]
        return web.json_response({"message-count": str(parts), "messages": messages})
