"""kanal's own SMS format, for gateways that can sign (`X-Kanal-Signature`)."""

from __future__ import annotations

from connectors.sms_generic import send
from connectors.sms_generic.config import SmsGenericConfig
from connectors.sms_generic.wire import GenericSmsConnector
from connectors.spec import Channel, Connector, Secrets


def _build(config: SmsGenericConfig, secret: Secrets) -> GenericSmsConnector:
    return GenericSmsConnector(secret=secret("secret"))


CONNECTOR = Connector(
    name="sms_generic",
    channels=(Channel("sms", "SMS"),),
    answers="sms",
    config=SmsGenericConfig,
    webhook="sms/generic",
    build=_build,
    sender=send.sender,
)
