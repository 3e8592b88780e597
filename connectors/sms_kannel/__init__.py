"""Kannel's sms-service get-url (`key` parameter)."""

from __future__ import annotations

from connectors.sms_kannel import send
from connectors.sms_kannel.config import SmsKannelConfig
from connectors.sms_kannel.wire import KannelConnector
from connectors.spec import Channel, Connector, Secrets


def _build(config: SmsKannelConfig, secret: Secrets) -> KannelConnector:
    return KannelConnector(secret=secret("secret"))


CONNECTOR = Connector(
    name="sms_kannel",
    channels=(Channel("sms", "SMS"),),
    answers="sms",
    config=SmsKannelConfig,
    webhook="sms/kannel",
    build=_build,
    sender=send.sender,
)
