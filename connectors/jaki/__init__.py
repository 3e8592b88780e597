"""JAKI, the city's app: geo-tagged reports in kanal's own format."""

from __future__ import annotations

from connectors.jaki.wire import JakiConnector
from connectors.spec import Channel, Connector, SecretConfig, built_with_secret

CONNECTOR = Connector(
    name="jaki",
    channels=(Channel("jaki", "JAKI"),),
    answers="webhook",
    config=SecretConfig,
    webhook="jaki",
    build=built_with_secret(JakiConnector),
)
