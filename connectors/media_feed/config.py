"""The `[channels.media]` section: news feeds watched for complaints."""

from __future__ import annotations

from pydantic import Field

from connectors.spec import ConnectorConfig


class MediaConfig(ConnectorConfig):
    feeds: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    poll_interval_s: float = Field(default=900.0, gt=0)
