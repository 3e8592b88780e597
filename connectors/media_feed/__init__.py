"""Complaints seen in mass media: news feeds watched for keywords (the feed poller)."""

from __future__ import annotations

from connectors.media_feed.config import MediaConfig
from connectors.spec import Channel, Connector

CONNECTOR = Connector(
    name="media_feed",
    channels=(Channel("media", "Media massa"),),
    config=MediaConfig,
    section="media",
)
