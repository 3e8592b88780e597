"""Answers on Messenger and Instagram: the Send API, within the 24-hour window."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from connectors.meta.config import MetaConfig
from connectors.outbound import (
    NoRecipient,
    OutboundMessage,
    PermanentSendError,
    Recipient,
    RetryableSendError,
    read_json,
    request,
)
from connectors.spec import Secrets, read_secret


# Graph errors meaning "this user cannot be messaged now / any more": never retried.
class MetaSender:
    """Send API: `POST {graph}/v21.0/me/messages?access_token=PAGE_TOKEN`, messaging_type
    RESPONSE (allowed only within the 24-hour window, checked by the caller too)."""

    def __init__(self, graph_url: str, page_tokens: Mapping[str, str]):
        self.graph_url = graph_url.rstrip("/")
        self.page_tokens = dict(page_tokens)

    @property
    def configured(self) -> bool:
        return bool(self.page_tokens)

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        page = str(message.meta.get("page_id") or "")
        token = self.page_tokens.get(page)
        if not token:
            raise PermanentSendError("meta: no page_token configured for this page/account")
        status, body, _ = await request(
            session,
            "meta",
            "POST",
            f"{self.graph_url}/v21.0/me/messages",
            params={"access_token": token},
            json={
                "recipient": {"id": message.to},
                "messaging_type": "RESPONSE",
                "message": {"text": message.body[:2000]},
            },
        )
        if status >= 400:
            try:
                error = json.loads(body).get("error") or {}
            except (ValueError, AttributeError):
                error = {}
            text = f"meta: HTTP {status}: {error.get('message') or body[:200]!r}"
            # Graph codes 4/17/32/613 are rate limits; 1/2 are transient service errors.
            if status == 429 or status >= 500 or error.get("code") in (1, 2, 4, 17, 32, 613):
                raise RetryableSendError(text)
            raise PermanentSendError(text)
        return str(read_json("meta", body).get("message_id") or "")


def sender(config: MetaConfig, secret: Secrets) -> MetaSender:
    tokens = {
        page: token
        for page, account in config.accounts.items()
        if (token := read_secret(account, "page_token"))
    }
    return MetaSender(config.graph_url, tokens)


def recipient(raw: Mapping[str, Any], user_id: str | None) -> Recipient | NoRecipient:
    """The sender of a private message (PSID or IGSID) through the page or account that
    received it; public comments and mentions are not answered in private."""
    if raw.get("kind") in ("comment", "mention"):
        return NoRecipient("public_comment")
    extra = raw.get("extra") or {}
    page = extra.get("recipient_id") or extra.get("entry_id")
    if not user_id or not page:
        return NoRecipient("no_recipient")
    return Recipient(user_id, {"page_id": str(page)}, windowed=True)
