"""The `[channels.telegram]` section."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from connectors.spec import ConnectorConfig


class TelegramConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("bot_token", "secret_token")
    bot_token: str = ""
    bot_token_file: str = ""
    secret_token: str = ""
    secret_token_file: str = ""
    mode: Literal["webhook", "polling"] = "webhook"
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    # polling: one run long-polls getUpdates for about this long (the scheduler's interval).
    poll_interval_s: float = Field(default=30.0, ge=1)
