"""E-mail to the official address: MIME in, raw messages out (SMTP, IMAP, mbox)."""

from __future__ import annotations

from connectors.email import send
from connectors.email.config import EmailConfig
from connectors.spec import Channel, Connector

CONNECTOR = Connector(
    name="email",
    channels=(Channel("email", "E-mail"),),
    answers="email",
    config=EmailConfig,
    sender=send.sender,
)
