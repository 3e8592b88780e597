"""The `[channels.meta]` section."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from connectors.spec import ConnectorConfig, Strict, check_owner


class MetaAccount(Strict):
    channel: Literal["facebook", "instagram"]
    owner: str = "province"
    page_token: str = ""
    page_token_file: str = ""

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        return check_owner(value)


class MetaConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("app_secret", "verify_token")
    verify_token: str = ""
    verify_token_file: str = ""
    app_secret: str = ""
    app_secret_file: str = ""
    accounts: dict[str, MetaAccount] = Field(default_factory=dict)
    media_hosts: list[str] = Field(
        default_factory=lambda: ["*.fbcdn.net", "*.cdninstagram.com", "lookaside.fbsbx.com"]
    )
    graph_url: str = "https://graph.facebook.com"  # Send API base (tests: a local fake)
