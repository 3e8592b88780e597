"""Replies in the citizen's mail thread through the configured SMTP relay."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiohttp

from connectors.email.config import EmailConfig
from connectors.outbound import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    UncertainSendError,
)
from connectors.spec import Secrets, parse_host_port


class EmailSender:
    """A reply in the citizen's thread through the configured SMTP relay (stdlib smtplib in a
    worker thread). The Message-ID is fixed per outbound row, so a resend is recognisable."""

    def __init__(self, relay: str):
        self.relay = relay

    @property
    def configured(self) -> bool:
        return bool(self.relay)

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        if not self.relay:
            raise PermanentSendError("email: channels.email.smtp_relay is not configured")
        mail = self.build(message)
        # The session is not used for SMTP; its timeout is the notifier's, and ours too.
        await asyncio.to_thread(self._send_sync, mail, session.timeout.total or 30.0)
        return str(mail["Message-ID"])

    @staticmethod
    def build(message: OutboundMessage) -> EmailMessage:
        meta = message.meta
        mail = EmailMessage()
        mail["From"] = str(meta.get("from") or "")
        mail["To"] = message.to
        mail["Subject"] = str(meta.get("subject") or "")
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = str(meta.get("message_id"))
        if meta.get("in_reply_to"):
            mail["In-Reply-To"] = str(meta["in_reply_to"])
        if meta.get("references"):
            mail["References"] = str(meta["references"])
        # RFC 3834: our mail is automatic, so the citizen's autoresponder must not answer it.
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
        mail.set_content(message.body)
        return mail

    def _send_sync(self, mail: EmailMessage, timeout_s: float) -> None:
        host, port = parse_host_port(self.relay)
        try:
            smtp = smtplib.SMTP(host, port, timeout=timeout_s)
        except (OSError, smtplib.SMTPException) as exc:
            # Nothing was handed over before the session opened: safe to try again.
            raise RetryableSendError(f"email: cannot connect to the relay: {exc}") from exc
        try:
            with smtp:
                smtp.ehlo_or_helo_if_needed()
                if smtp.has_extn("starttls") and host not in ("127.0.0.1", "localhost", "::1"):
                    smtp.starttls()
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(400 <= c < 500 for c in codes):
                raise RetryableSendError(f"email: recipient deferred {codes}") from exc
            raise PermanentSendError(f"email: recipient refused {codes}") from exc
        except smtplib.SMTPResponseException as exc:
            text = f"email: SMTP {exc.smtp_code} {exc.smtp_error[:120]!r}"
            if 400 <= exc.smtp_code < 500:
                raise RetryableSendError(text) from exc
            raise PermanentSendError(text) from exc
        except (ConnectionRefusedError, smtplib.SMTPConnectError) as exc:
            raise RetryableSendError(f"email: cannot connect to the relay: {exc}") from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            raise UncertainSendError(f"email: relay stopped answering: {exc}") from exc
        except OSError as exc:
            raise RetryableSendError(f"email: relay unreachable: {exc}") from exc


def sender(config: EmailConfig, secret: Secrets) -> EmailSender:
    return EmailSender(config.smtp_relay)
