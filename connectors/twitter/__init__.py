"""X (Twitter): Account Activity webhook, or polling through the v2 API."""

from __future__ import annotations

from connectors.spec import Channel, Connector, Secrets
from connectors.twitter import media, send
from connectors.twitter.config import TwitterConfig
from connectors.twitter.wire import TwitterConnector


def _build(config: TwitterConfig, secret: Secrets) -> TwitterConnector:
    return TwitterConnector(
        consumer_secret=secret("consumer_secret"),
        own_user_ids={config.user_id} if config.user_id else None,
    )


CONNECTOR = Connector(
    name="twitter",
    channels=(Channel("twitter", "X/Twitter"),),
    answers="chat",
    config=TwitterConfig,
    webhook="twitter",
    build=_build,
    serves_webhook=lambda config: config.mode == "webhook",
    sender=send.sender,
    recipient=send.recipient,
    media=media.MEDIA,
)
