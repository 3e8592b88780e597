"""A fake Twilio REST API (Programmable Messaging) on 127.0.0.1.

    async with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as twilio:
        config: channels.sms_twilio.api_base_url = twilio.base_url

`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` checks like Twilio does: HTTP Basic
auth AccountSid:AuthToken (401, code 20003, otherwise; a path sid that is not the caller's
answers 404, code 20404), form fields `To` (E.164, code 21211 otherwise; missing: 21604),
`From` (missing: 21603) and `Body` (missing: 21602; over 1600 characters: 21617). Accepted
messages answer 201 with a `sid` (`SM` + 32 hex) and are recorded in `sent`; every request,
refused ones included, in `requests`.

Test controls: `fail_next(status, times)` answers the next calls with that HTTP status
(429 carries `Retry-After: 1`); `hold()` keeps the next requests open without answering
(they are recorded in `requests` on arrival) until `release()` — a provider that took the
request and has not answered yet.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["FakeTwilioApi"]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _error(status: int, code: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


class FakeTwilioApi(LoopbackServer):
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[dict[str, str]] = []
        self.sent: list[dict[str, str]] = []
        self._failures: list[int] = []
        self._held = False
        self._release = asyncio.Event()
        super().__init__()

    @property
    def base_url(self) -> str:
        return self.root

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)

    async def stop(self) -> None:
        self._release.set()  # a request held open must not keep the server from stopping
        await super().stop()

    def fail_next(self, status: int, times: int = 1) -> None:
        self._failures += [status] * times

    def hold(self) -> None:
        self._held = True
        self._release.clear()

    def release(self) -> None:
        self._held = False
        self._release.set()

    async def _create(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        if self._held:
            await self._release.wait()
        auth = request.headers.get("Authorization", "")
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        if auth != expected:
            return _error(401, 20003, "Authenticate")
        if request.match_info["sid"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        if self._failures:
            status = self._failures.pop(0)
            response = _error(status, 20429 if status == 429 else 20500, "fake failure")
            if status == 429:
                response.headers["Retry-After"] = "1"
            return response
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        sid = "SM" + uuid.uuid4().hex
        self.sent.append({**form, "sid": sid})
        answer: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "num_segments": str(-(-len(body) // 153) if len(body) > 160 else 1),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
        }
        return web.json_response(answer, status=201)
