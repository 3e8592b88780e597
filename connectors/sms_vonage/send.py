"""Outbound SMS through Vonage's SMS API."""

from __future__ import annotations

import aiohttp

from connectors.outbound import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    UncertainSendError,
    check_status,
    read_json,
    request,
)
from connectors.sms_vonage.config import SmsVonageConfig
from connectors.sms_vonage.gsm import is_gsm7
from connectors.spec import Secrets

# Vonage SMS API statuses that mean "not now" rather than "never" (1 throttled, 5 internal).
VONAGE_RETRYABLE = {"1", "5"}


class VonageSender:
    """`POST {base}/sms/json` with api_key, api_secret, from, to, text (type=unicode if needed)."""

    def __init__(self, base_url: str, api_key: str, api_secret: str, from_number: str):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.api_secret = api_secret
        self.from_number = from_number

    @property
    def configured(self) -> bool:
        return bool(self.api_key and self.api_secret)

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        if not (self.api_key and self.api_secret):
            raise PermanentSendError("sms_vonage: api_key and api_secret are not configured")
        sender = self.from_number or str(message.meta.get("from") or "")
        if not sender:
            raise PermanentSendError("sms_vonage: no sender (from_number or inbound to)")
        form = {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "from": sender,
            "to": message.to.lstrip("+"),  # Vonage wants international format without '+'
            "text": message.body,
        }
        if not is_gsm7(message.body):
            form["type"] = "unicode"
        status, body, headers = await request(
            session, "vonage", "POST", f"{self.base_url}/sms/json", data=form
        )
        check_status("vonage", status, body, headers)
        answer = read_json("vonage", body)
        parts = answer.get("messages") or []
        if not parts:
            raise UncertainSendError("vonage: answer without messages")
        failed = [p for p in parts if str(p.get("status")) != "0"]
        if failed:
            first = failed[0]
            text = f"vonage: status {first.get('status')}: {first.get('error-text', '')}"
            if str(first.get("status")) in VONAGE_RETRYABLE and len(failed) == len(parts):
                raise RetryableSendError(text)
            raise PermanentSendError(text)
        return ",".join(str(p.get("message-id")) for p in parts)


def sender(config: SmsVonageConfig, secret: Secrets) -> VonageSender:
    return VonageSender(
        config.api_base_url, config.api_key, secret("api_secret") or "", config.from_number
    )
