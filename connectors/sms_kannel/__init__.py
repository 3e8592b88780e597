"""Kannel's sms-service get-url (`key` parameter)."""

from __future__ import annotations

from connectors.sms_kannel import send
from connectors.sms_kannel.config import SmsKannelConfig
from connectors.sms_kannel.wire import KannelConnector
from connectors.spec import Channel, Connector, built_with_secret

CONNECTOR = Connector(
    name="sms_kannel",
    channels=(Channel("sms", "SMS"),),
    answers="sms",
    config=SmsKannelConfig,
    webhook="sms/kannel",
    build=built_with_secret(KannelConnector),
    sender=send.sender,
)
