"""The `[channels.sms_kannel]` section."""

from __future__ import annotations

from connectors.spec import SecretConfig


class SmsKannelConfig(SecretConfig):
    sendsms_url: str = ""
    sendsms_user: str = ""
    sendsms_password: str = ""
    sendsms_password_file: str = ""
