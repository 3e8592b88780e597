"""The one way e-mail enters kanal: the exact message bytes, read by `parse_email`, stored.

Shared by the SMTP listener, the IMAP poller, `kanal import mbox` and `kanal ingest
--connector email`, so every intake dedupes the same way: on (connector "email",
external id), the external id being the Message-ID or, without one, a hash of the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from connectors.base import MalformedPayload, WireRequest
from connectors.email.wire import parse_email
from gateway.base.runtime import Runtime
from gateway.intake.webhooks import malformed_raw, to_new_raw
from gateway.store import NewRaw, StoredRaw

CONNECTOR = "email"
CHANNEL = "email"
TOO_LARGE = "too_large"  # error and external id prefix of mail kept as headers only


@dataclass(frozen=True, slots=True)
class MailEnvelope:
    """How one message reached kanal: never part of the message, kept beside it."""

    intake: str  # smtp | poll | import
    source: str  # e.g. "smtp:127.0.0.1", "imap:INBOX:1700000000:42", "mbox:file:7"
    received_at: datetime
    extra_headers: tuple[tuple[str, str], ...] = ()
    # Backfills (mbox) keep the time the citizen wrote, when the Date header is believable.
    prefer_message_date: bool = False


@dataclass(frozen=True, slots=True)
class PreparedMail:
    row: NewRaw
    malformed: str | None  # why the bytes could not be read as e-mail (stored as failed)


def _wire(raw: bytes, envelope: MailEnvelope) -> WireRequest:
    return WireRequest(
        method=envelope.intake.upper(),
        url=f"mail://{envelope.source}",
        path="",
        query=(),
        headers=dict(envelope.extra_headers),
        body=raw,
        remote=envelope.source,
    )


def prepare_too_large(headers: bytes, envelope: MailEnvelope, why: str) -> PreparedMail:
    """A message over the size limit, not read whole: its headers, kept as a failed raw
    message (shown in the inbox) whose external id is its place in the source."""
    error = f"{TOO_LARGE}: {why}"
    row = malformed_raw(CONNECTOR, CHANNEL, _wire(headers, envelope), envelope.intake, error)
    return PreparedMail(replace(row, external_id=f"{TOO_LARGE}:{envelope.source}"[:255]), error)


def prepare_mail(raw: bytes, envelope: MailEnvelope) -> PreparedMail:
    """The raw row for one message; never raises (unreadable mail is kept as a failed raw)."""
    wire = _wire(raw, envelope)
    try:
        message = parse_email(
            raw, received_at=envelope.received_at, intake_id=envelope.source, connector=CONNECTOR
        )
    except MalformedPayload as exc:
        return PreparedMail(
            malformed_raw(CONNECTOR, CHANNEL, wire, envelope.intake, str(exc)), str(exc)
        )
    if envelope.prefer_message_date:
        written = _message_date(message.extra.get("date_iso"))
        if written is not None and written <= envelope.received_at:
            message.received_at = written
    try:
        row = to_new_raw(message, wire, envelope.intake, payload=raw)
    except MalformedPayload as exc:
        return PreparedMail(
            malformed_raw(CONNECTOR, CHANNEL, wire, envelope.intake, str(exc)), str(exc)
        )
    return PreparedMail(row, None)


async def store_mail(runtime: Runtime, prepared: Sequence[PreparedMail]) -> list[StoredRaw]:
    """Durably store (one group commit); raises whatever the store raises."""
    stored = await runtime.store.writer().submit([p.row for p in prepared])
    for item, p in zip(stored, prepared, strict=True):
        if item.created and p.malformed is None:
            runtime.metrics.raw_messages_stored.labels(CONNECTOR, p.row.intake).inc()
    return stored


def _message_date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
