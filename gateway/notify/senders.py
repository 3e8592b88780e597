"""The senders of this configuration: one per connector that can answer a citizen, built
by its own `send.py` from its `[channels.*]` section (connectors.ALL)."""

from __future__ import annotations

from connectors import ALL
from connectors.outbound import Sender
from gateway.base.config import Settings, secrets_of


def build_senders(settings: Settings) -> dict[str, Sender]:
    senders = {}
    for connector in ALL:
        if connector.sender is None or connector.config_section is None:
            continue
        section = settings.connector(connector.config_section)
        senders[connector.name] = connector.sender(section, secrets_of(section))
    return senders
