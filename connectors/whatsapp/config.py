"""The `[channels.whatsapp]` section."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from connectors.spec import ConnectorConfig, Strict, check_owner


class WhatsAppNumber(Strict):
    """`[channels.whatsapp.numbers."<phone_number_id>"]`: one business phone number."""

    owner: str = "province"

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        return check_owner(value)


class WhatsAppConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("app_secret", "verify_token")
    verify_token: str = ""
    verify_token_file: str = ""
    app_secret: str = ""
    app_secret_file: str = ""
    # The system user's token: media downloads and answers (Graph API, bearer auth).
    access_token: str = ""
    access_token_file: str = ""
    graph_url: str = "https://graph.facebook.com"  # tests: a local fake
    media_hosts: list[str] = Field(default_factory=lambda: ["lookaside.fbsbx.com"])
    # Answers outside the 24-hour customer service window: an approved template whose body
    # takes the ticket as its one parameter ({{1}}); none configured = not answered.
    template_name: str = ""
    template_language: str = "id"
    numbers: dict[str, WhatsAppNumber] = Field(default_factory=dict)
