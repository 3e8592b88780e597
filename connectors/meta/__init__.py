"""Meta's Messenger and Instagram webhooks (one app, several pages and accounts)."""

from __future__ import annotations

from connectors.meta import send
from connectors.meta.config import MetaConfig
from connectors.meta.wire import MetaConnector
from connectors.spec import Channel, Connector, Secrets


def _build(config: MetaConfig, secret: Secrets) -> MetaConnector:
    return MetaConnector(
        app_secret=secret("app_secret"),
        verify_token=secret("verify_token"),
        accounts={k: (a.channel, a.owner) for k, a in config.accounts.items()},
    )


CONNECTOR = Connector(
    name="meta",
    channels=(Channel("facebook", "Facebook"), Channel("instagram", "Instagram")),
    answers="chat",
    config=MetaConfig,
    webhook="meta",
    build=_build,
    sender=send.sender,
    recipient=send.recipient,
)
