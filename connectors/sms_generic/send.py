"""Outbound SMS through a gateway speaking kanal's own signed JSON."""

from __future__ import annotations

import json

import aiohttp

from connectors.base import kanal_signature
from connectors.outbound import (
    OutboundMessage,
    PermanentSendError,
    check_status,
    request,
)
from connectors.sms_generic.config import SmsGenericConfig
from connectors.spec import Secrets


class GenericSmsSender:
    """POST JSON `{"id","to","from","text"}` to `channels.sms_generic.reply_url`, signed with
    `X-Kanal-Signature` like the inbound side; the `id` lets the gateway drop a resend."""

    def __init__(self, url: str, secret: str):
        self.url = url
        self.secret = secret

    @property
    def configured(self) -> bool:
        return bool(self.url)

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        if not self.url:
            raise PermanentSendError("sms_generic: reply_url is not configured")
        body = json.dumps(
            {
                "id": message.id,
                "to": message.to,
                "from": message.meta.get("from"),
                "text": message.body,
            },
            ensure_ascii=False,
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers["X-Kanal-Signature"] = kanal_signature(self.secret, body)
        status, answer, answer_headers = await request(
            session, "sms_generic", "POST", self.url, data=body, headers=headers
        )
        check_status("sms_generic", status, answer, answer_headers)
        try:
            data = json.loads(answer) if answer else {}
        except ValueError:
            data = {}
        return str((data.get("id") if isinstance(data, dict) else None) or message.id)


def sender(config: SmsGenericConfig, secret: Secrets) -> GenericSmsSender:
    return GenericSmsSender(config.reply_url, secret("secret") or "")
