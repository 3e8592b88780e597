"""The `[channels.sms_vonage]` section."""

from __future__ import annotations

from typing import ClassVar, Literal

from connectors.spec import ConnectorConfig


class SmsVonageConfig(ConnectorConfig):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("signature_secret",)
    signature_secret: str = ""
    signature_secret_file: str = ""
    signature_method: Literal["md5hash", "md5", "sha1", "sha256", "sha512"] = "md5hash"
    api_key: str = ""
    api_secret: str = ""
    api_secret_file: str = ""
    api_base_url: str = "https://rest.nexmo.com"  # outbound SMS API (tests: a local fake)
    from_number: str = ""  # sender id for outbound SMS; default: the number the citizen texted
