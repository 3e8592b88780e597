"""Twilio's inbound SMS webhook (form-encoded, `X-Twilio-Signature`)."""

from __future__ import annotations

from connectors.sms_twilio import media, send
from connectors.sms_twilio.config import SmsTwilioConfig
from connectors.sms_twilio.wire import TwilioConnector
from connectors.spec import Channel, Connector, Secrets


def _build(config: SmsTwilioConfig, secret: Secrets) -> TwilioConnector:
    return TwilioConnector(auth_token=secret("auth_token"))


CONNECTOR = Connector(
    name="sms_twilio",
    channels=(Channel("sms", "SMS"),),
    answers="sms",
    config=SmsTwilioConfig,
    webhook="sms/twilio",
    build=_build,
    sender=send.sender,
    media=media.MEDIA,
)
