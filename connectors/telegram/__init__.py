"""Telegram bots: webhook (secret header) or getUpdates polling."""

from __future__ import annotations

from connectors.spec import Channel, Connector, Secrets
from connectors.telegram import media, send
from connectors.telegram.config import TelegramConfig
from connectors.telegram.wire import TelegramConnector


def _build(config: TelegramConfig, secret: Secrets) -> TelegramConnector:
    return TelegramConnector(secret_token=secret("secret_token"))


CONNECTOR = Connector(
    name="telegram",
    channels=(Channel("telegram", "Telegram"),),
    answers="chat",
    config=TelegramConfig,
    webhook="telegram",
    build=_build,
    serves_webhook=lambda config: config.mode == "webhook",
    sender=send.sender,
    recipient=send.recipient,
    media=media.MEDIA,
)
