"""LAPOR! 1708, the national complaint platform: webhook and poller."""

from __future__ import annotations

from connectors.lapor.config import LaporConfig
from connectors.lapor.wire import LaporConnector
from connectors.spec import Channel, Connector, built_with_secret

CONNECTOR = Connector(
    name="lapor",
    channels=(Channel("lapor", "LAPOR!"),),
    answers="webhook",
    config=LaporConfig,
    webhook="lapor",
    build=built_with_secret(LaporConnector),
)
