"""Outbound SMS through Kannel's smsbox (`sendsms`)."""

from __future__ import annotations

import aiohttp

from connectors.outbound import (
    OutboundMessage,
    PermanentSendError,
    check_status,
    request,
)
from connectors.sms_kannel.config import SmsKannelConfig
from connectors.spec import Secrets


class KannelSender:
    """Kannel's `GET …/cgi-bin/sendsms?username=&password=&from=&to=&text=` (smsbox)."""

    def __init__(self, url: str, user: str, password: str):
        self.url = url
        self.user = user
        self.password = password

    @property
    def configured(self) -> bool:
        return bool(self.url and self.user)

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        if not (self.url and self.user):
            raise PermanentSendError("sms_kannel: sendsms_url and sendsms_user are not configured")
        params = {
            "username": self.user,
            "password": self.password,
            "to": message.to,
            "text": message.body,
        }
        sender = str(message.meta.get("from") or "")
        if sender:
            params["from"] = sender
        if not message.body.isascii():
            params.update(charset="UTF-8", coding="2")
        status, body, headers = await request(session, "kannel", "GET", self.url, params=params)
        # Kannel answers 202 "0: Accepted for delivery" / "3: Queued for later delivery";
        # 4xx for bad credentials or parameters, 503 while bearerbox is away.
        check_status("kannel", status, body, headers)
        return f"kannel:{message.id}"  # Kannel gives no message id back without DLR setup


def sender(config: SmsKannelConfig, secret: Secrets) -> KannelSender:
    return KannelSender(config.sendsms_url, config.sendsms_user, secret("sendsms_password") or "")
