"""Answers on Telegram: the Bot API's sendMessage."""

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
    check_status,
    read_json,
    request,
)
from connectors.spec import Secrets
from connectors.telegram.config import TelegramConfig


class TelegramSender:
    """Bot API `sendMessage` at `{base_url}{token}/sendMessage` (base_url from config)."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.token = token

    @property
    def configured(self) -> bool:
        return bool(self.token)

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        if not self.token:
            raise PermanentSendError("telegram: bot_token is not configured")
        status, body, headers = await request(
            session,
            "telegram",
            "POST",
            f"{self.base_url}{self.token}/sendMessage",
            json={
                "chat_id": int(message.to) if message.to.lstrip("-").isdigit() else message.to,
                "text": message.body,
                "disable_web_page_preview": True,
            },
        )
        if status == 429:
            try:
                retry = float(json.loads(body)["parameters"]["retry_after"])
            except (ValueError, KeyError, TypeError):
                retry = None
            raise RetryableSendError("telegram: flood control (429)", retry_after_s=retry)
        check_status("telegram", status, body, headers)
        result = read_json("telegram", body).get("result") or {}
        return str(result.get("message_id") or "")


def sender(config: TelegramConfig, secret: Secrets) -> TelegramSender:
    return TelegramSender(config.base_url, secret("bot_token") or "")


def recipient(raw: Mapping[str, Any], user_id: str | None) -> Recipient | NoRecipient:
    """The chat the message came from, when it is a private chat with the bot."""
    extra = raw.get("extra") or {}
    chat_id = extra.get("chat_id")
    if chat_id is None:
        return NoRecipient("no_recipient")
    if extra.get("chat_type") not in (None, "private"):
        return NoRecipient("not_a_private_chat")
    return Recipient(str(chat_id))
