"""The `[channels.sms_twilio]` section."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from connectors.spec import ConnectorConfig


class SmsTwilioConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("auth_token",)
    auth_token: str = ""
    auth_token_file: str = ""
    account_sid: str = ""
    media_hosts: list[str] = Field(default_factory=lambda: ["api.twilio.com", "*.twiliocdn.com"])
    # Outbound SMS (acknowledgements): REST base URL (tests point it at a local fake) and
    # the sender number when the inbound `To` is not to be used.
    api_base_url: str = "https://api.twilio.com"
    from_number: str = ""
