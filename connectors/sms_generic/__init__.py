"""kanal's own SMS format, for gateways that can sign (`X-Kanal-Signature`)."""

from __future__ import annotations

from connectors.sms_generic import send
from connectors.sms_generic.config import SmsGenericConfig
from connectors.sms_generic.wire import GenericSmsConnector
from connectors.spec import Channel, Connector, built_with_secret

CONNECTOR = Connector(
    name="sms_generic",
    channels=(Channel("sms", "SMS"),),
    answers="sms",
    config=SmsGenericConfig,
    webhook="sms/generic",
    build=built_with_secret(GenericSmsConnector),
    sender=send.sender,
)
