"""The `[channels.sms_generic]` section."""

from __future__ import annotations

from connectors.spec import SecretConfig


class SmsGenericConfig(SecretConfig):
    # Optional: where kanal POSTs outbound SMS (JSON {"id","to","from","text"}, signed with
    # X-Kanal-Signature over the body with `secret`). Empty: no replies through this gateway.
    reply_url: str = ""
