"""The `[channels.lapor]` section."""

from __future__ import annotations

from pydantic import Field

from connectors.spec import SecretConfig


class LaporConfig(SecretConfig):
    poll_endpoint: str = ""
    poll_token: str = ""
    poll_token_file: str = ""
    poll_interval_s: float = Field(default=300.0, gt=0)
    field_mapping: dict[str, str] = Field(default_factory=dict)
