"""The `[channels.email]` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.spec import ConnectorConfig


class EmailConfig(ConnectorConfig):
    # Mail arriving by SMTP is accepted only for these recipients; it needs no secret.
    recipients: list[str] = Field(default_factory=list)
    max_message_bytes: int = Field(default=26_214_400, gt=0)
    imap_host: str = ""
    imap_port: int = 993
    imap_ssl: bool = True
    imap_username: str = ""
    imap_password: str = ""
    imap_password_file: str = ""
    imap_folders: list[str] = Field(default_factory=lambda: ["INBOX"])
    imap_after: Literal["keep", "flag", "move"] = "flag"
    imap_move_to: str = "Processed"
    imap_lookback_days: int = Field(default=0, ge=0)
    imap_poll_interval_s: float = Field(default=60.0, gt=0)
    # imap_after = "flag": the flag set on stored mail ("\\Seen" marks it read for people too).
    imap_flag: str = "$KanalStored"
    # Wait with IMAP IDLE between polls when the server offers it (new mail in about a second).
    imap_idle: bool = True
    imap_timeout_s: float = Field(default=30.0, gt=0)
    smtp_relay: str = ""
    from_address: str = ""
    # Mail hosts whose Authentication-Results headers kanal believes (RFC 8601 authserv-ids):
    # only mail they passed (DMARC, or SPF/DKIM aligned with From) is answered. Empty: no
    # mail is answered, so a forged From never gets kanal's mail (connectors/email/auth.py).
    trusted_authserv_ids: list[str] = Field(default_factory=list)
