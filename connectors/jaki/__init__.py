"""JAKI, the city's app: geo-tagged reports in kanal's own format."""

from __future__ import annotations

from connectors.jaki.wire import JakiConnector
from connectors.spec import Channel, Connector, SecretConfig, Secrets


def _build(config: SecretConfig, secret: Secrets) -> JakiConnector:
    return JakiConnector(secret=secret("secret"))


CONNECTOR = Connector(
    name="jaki",
    channels=(Channel("jaki", "JAKI"),),
    answers="webhook",
    config=SecretConfig,
    webhook="jaki",
    build=_build,
)
