"""LAPOR! 1708, the national complaint platform: webhook and poller."""

from __future__ import annotations

from connectors.lapor.config import LaporConfig
from connectors.lapor.wire import LaporConnector
from connectors.spec import Channel, Connector, Secrets


def _build(config: LaporConfig, secret: Secrets) -> LaporConnector:
    return LaporConnector(secret=secret("secret"))


CONNECTOR = Connector(
    name="lapor",
    channels=(Channel("lapor", "LAPOR!"),),
    answers="webhook",
    config=LaporConfig,
    webhook="lapor",
    build=_build,
)
