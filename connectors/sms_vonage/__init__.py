"""Vonage's inbound SMS webhook (`sig` parameter)."""

from __future__ import annotations

from connectors.sms_vonage import send
from connectors.sms_vonage.config import SmsVonageConfig
from connectors.sms_vonage.wire import VonageConnector
from connectors.spec import Channel, Connector, Secrets


def _build(config: SmsVonageConfig, secret: Secrets) -> VonageConnector:
    return VonageConnector(
        signature_secret=secret("signature_secret"), signature_method=config.signature_method
    )


CONNECTOR = Connector(
    name="sms_vonage",
    channels=(Channel("sms", "SMS"),),
    answers="sms",
    config=SmsVonageConfig,
    webhook="sms/vonage",
    build=_build,
    sender=send.sender,
)
