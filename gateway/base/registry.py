"""The webhook connectors this configuration runs, built from their sections (connectors.ALL)."""

from __future__ import annotations

from connectors import WEBHOOK_PATHS
from connectors.base import WebhookConnector
from connectors.spec import Connector
from gateway.base.config import LoadedConfig, secrets_of


def build_webhook_connector(loaded: LoadedConfig, connector: Connector) -> WebhookConnector:
    """The connector's webhook side, whether or not its section enables it (`kanal ingest`
    replays payloads of any connector)."""
    assert connector.build is not None and connector.config_section is not None
    section = loaded.settings.connector(connector.config_section)
    # A missing secret is None, "do not verify": only reachable when allow_unsigned is set.
    return connector.build(section, secrets_of(section))


def build_webhook_connectors(loaded: LoadedConfig) -> dict[str, WebhookConnector]:
    """The enabled webhook connectors by name; a disabled one answers 404."""
    enabled = {}
    for connector in WEBHOOK_PATHS.values():
        assert connector.config_section is not None
        section = loaded.settings.connector(connector.config_section)
        if section.enabled and connector.serves_webhook(section):
            enabled[connector.name] = build_webhook_connector(loaded, connector)
    return enabled
