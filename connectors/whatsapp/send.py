"""Answers on WhatsApp: `POST {graph}/{version}/{phone_number_id}/messages` with the bearer
token. Free-form text within 24 hours of the citizen's last message; outside it (planned
so, or Graph's error 131047 when the window closed meanwhile) the configured template,
whose one body parameter is the ticket; none configured: refused, with the reason."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from connectors.outbound import (
    NoRecipient,
    OutboundMessage,
    PermanentSendError,
    Recipient,
    RetryableSendError,
    read_json,
    request,
)
from connectors.spec import Secrets
from connectors.whatsapp.config import WhatsAppConfig

GRAPH_VERSION = "v21.0"
WINDOW_CLOSED = 131047  # "Re-engagement message": more than 24 hours since the citizen wrote
# Graph codes worth another try: rate limits and transient service errors.
_RETRYABLE = {1, 2, 4, 80007, 130429, 131000, 131016, 131056}


class WhatsAppSender:
    def __init__(self, graph_url: str, token: str, template_name: str, template_language: str):
        self.graph_url = graph_url.rstrip("/")
        self.token = token
        self.template_name = template_name
        self.template_language = template_language

    @property
    def configured(self) -> bool:
        return bool(self.token)

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        if not self.token:
            raise PermanentSendError("whatsapp: access_token is not configured")
        number = str(message.meta.get("phone_number_id") or "")
        if not number:
            raise PermanentSendError("whatsapp: no phone_number_id to answer from")
        if not message.meta.get("template"):
            try:
                return await self._post(session, number, self._text(message))
            except _WindowClosed:
                pass  # the window closed after planning: the template, as if planned so
        if not self.template_name:
            raise PermanentSendError(
                "whatsapp: outside the 24-hour window and no template_name configured"
            )
        try:
            return await self._post(session, number, self._template(message))
        except _WindowClosed as exc:  # a template is never refused for the window
            raise PermanentSendError(str(exc)) from None

    def _text(self, message: OutboundMessage) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to,
            "type": "text",
            "text": {"body": message.body[:4096], "preview_url": False},
        }

    def _template(self, message: OutboundMessage) -> dict[str, Any]:
        ticket = str(message.meta.get("ticket") or "")
        template: dict[str, Any] = {
            "name": self.template_name,
            "language": {"code": self.template_language},
        }
        if ticket:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": ticket}]}
            ]
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to,
            "type": "template",
            "template": template,
        }

    async def _post(self, session: aiohttp.ClientSession, number: str, body: dict[str, Any]) -> str:
        status, answer, _ = await request(
            session,
            "whatsapp",
            "POST",
            f"{self.graph_url}/{GRAPH_VERSION}/{number}/messages",
            headers={"Authorization": f"Bearer {self.token}"},
            json=body,
        )
        if status >= 400:
            try:
                error = json.loads(answer).get("error") or {}
            except (ValueError, AttributeError):
                error = {}
            code = error.get("code")
            text = f"whatsapp: HTTP {status}: {code} {error.get('message') or answer[:200]!r}"
            if code == WINDOW_CLOSED:
                raise _WindowClosed(text)
            if status == 429 or status >= 500 or code in _RETRYABLE:
                raise RetryableSendError(text)
            raise PermanentSendError(text)
        messages = read_json("whatsapp", answer).get("messages") or [{}]
        return str(messages[0].get("id") or "")


class _WindowClosed(Exception):
    pass


def sender(config: WhatsAppConfig, secret: Secrets) -> WhatsAppSender:
    return WhatsAppSender(
        config.graph_url,
        secret("access_token") or "",
        config.template_name,
        config.template_language,
    )


def recipient(raw: Mapping[str, Any], user_id: str | None) -> Recipient | NoRecipient:
    """The citizen's wa_id, answered from the business number they wrote to."""
    number = (raw.get("extra") or {}).get("phone_number_id")
    if not user_id or not number:
        return NoRecipient("no_recipient")
    return Recipient(
        user_id, {"phone_number_id": str(number)}, windowed=True, after_window="template"
    )
