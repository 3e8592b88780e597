"""The `[channels.twitter]` section."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from connectors.spec import ConnectorConfig


class TwitterConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("consumer_secret",)
    consumer_key: str = ""
    consumer_secret: str = ""
    consumer_secret_file: str = ""
    access_token: str = ""
    access_token_secret: str = ""
    access_token_secret_file: str = ""
    bearer_token: str = ""
    bearer_token_file: str = ""
    user_id: str = ""
    mode: Literal["webhook", "polling"] = "webhook"
    poll_interval_s: float = Field(default=60.0, gt=0)
    media_hosts: list[str] = Field(
        default_factory=lambda: ["pbs.twimg.com", "video.twimg.com", "ton.twitter.com"]
    )
