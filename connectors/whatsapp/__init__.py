"""WhatsApp Business Cloud API: webhooks of one Meta app, several business numbers."""

from __future__ import annotations

from connectors.spec import Channel, Connector, Secrets
from connectors.whatsapp import media, send
from connectors.whatsapp.config import WhatsAppConfig
from connectors.whatsapp.wire import WhatsAppConnector


def _build(config: WhatsAppConfig, secret: Secrets) -> WhatsAppConnector:
    return WhatsAppConnector(
        app_secret=secret("app_secret"),
        verify_token=secret("verify_token"),
        numbers={number: n.owner for number, n in config.numbers.items()},
    )


CONNECTOR = Connector(
    name="whatsapp",
    channels=(Channel("whatsapp", "WhatsApp"),),
    answers="chat",
    config=WhatsAppConfig,
    webhook="whatsapp",
    build=_build,
    sender=send.sender,
    recipient=send.recipient,
    media=media.MEDIA,
)
