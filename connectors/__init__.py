"""Connectors: one folder per channel; wire format in, raw messages out (pure, no I/O).

ALL is the one list of connectors: the webhook routes, the configuration sections, the
channel labels of the pages, the channel of each connector and the reply planning are
derived from it. Adding a channel is one folder, one line here, and its section in
config/kanal.example.toml.
"""

from __future__ import annotations

from types import MappingProxyType

from connectors import (
    desk,
    email,
    jaki,
    lapor,
    media_feed,
    meta,
    sms_generic,
    sms_kannel,
    sms_twilio,
    sms_vonage,
    telegram,
    twitter,
    whatsapp,
)
from connectors.spec import Connector

ALL: tuple[Connector, ...] = (
    sms_twilio.CONNECTOR,
    sms_vonage.CONNECTOR,
    sms_kannel.CONNECTOR,
    sms_generic.CONNECTOR,
    jaki.CONNECTOR,
    lapor.CONNECTOR,
    meta.CONNECTOR,
    twitter.CONNECTOR,
    telegram.CONNECTOR,
    whatsapp.CONNECTOR,
    email.CONNECTOR,
    media_feed.CONNECTOR,
    desk.DESK,
    desk.CLIPPING,
)

BY_NAME = MappingProxyType({c.name: c for c in ALL})
# path under /webhooks/ → connector
WEBHOOK_PATHS = MappingProxyType({c.webhook: c for c in ALL if c.webhook})
# [channels.<section>] → connector
BY_SECTION = MappingProxyType({c.config_section: c for c in ALL if c.config_section})
# channel code → its label on the pages (Bahasa Indonesia)
CHANNEL_LABELS = MappingProxyType({ch.code: ch.label for c in ALL for ch in c.channels})


def channels_answered(answer: str) -> frozenset[str]:
    """The channels whose connectors answer the citizen this way (see `spec.Answer`)."""
    return frozenset(ch.code for c in ALL if c.answers == answer for ch in c.channels)


__all__ = [
    "ALL",
    "BY_NAME",
    "BY_SECTION",
    "CHANNEL_LABELS",
    "WEBHOOK_PATHS",
    "Connector",
    "channels_answered",
]
