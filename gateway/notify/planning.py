"""Whether and how the citizen behind a report hears about it (pure): the webhook's answer,
a desk receipt, an SMS, a reply in the mail thread, or a message on the chat they wrote on
(whom to answer there is each chat connector's rule), and why not when not."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors import BY_NAME, channels_answered
from connectors.email.auth import sender_verified
from connectors.outbound import (
    FindRecipient,
    NoRecipient,
)
from gateway.base.config import Settings
from normalizers.report import Report

NOISE_THRESHOLD = 0.8


DESK_CHANNELS = channels_answered("receipt")  # a printed receipt at the desk


CHAT_CHANNELS = channels_answered("chat")


WEBHOOK_ANSWERED = channels_answered("webhook")  # the ticket is in the webhook's response


MACHINE_LOCALPARTS = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?|listserv|majordomo)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do about one report and kind: send (queued), skip, or nothing to send."""

    state: str  # queued | skipped | sent
    channel: str  # the report's channel, or "webhook_response"
    connector: str
    recipient: str = ""  # "<family>:<address>": the key rate limits count by
    to: str = ""
    reason: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def skipped(report: Report, reason: str, recipient: str = "") -> Plan:
    return Plan("skipped", report.channel, report.connector, recipient, reason=reason)


def last_citizen_message_at(report: Report) -> datetime:
    """When the citizen last wrote on this report's channel (Meta's 24-hour window)."""
    times = [report.received_at] + [f.at for f in report.follow_ups if f.channel == report.channel]
    return max(times)


def plan_message(
    report: Report, raw: Mapping[str, Any], kind: str, settings: Settings, now: datetime
) -> Plan:
    """Pure: whether and how the citizen behind `report` hears about it. `raw` is the stored
    RawMessage JSON of the report's first message (channel fields live in its `extra`)."""
    notify = settings.notify
    extra = raw.get("extra") or {}
    rejection = report.rejection or {}
    if kind == "ack" and not notify.ack_enabled:
        return skipped(report, "ack_disabled")
    if rejection.get("reason") == "automated" or raw.get("automated"):
        return skipped(report, "automated")
    if report.status == "rejected":
        return skipped(report, f"rejected:{rejection.get('reason') or 'unknown'}")
    # A report of no words (a shared location, a photo) is not judged by words it lacks.
    if report.noise_score >= NOISE_THRESHOLD and (report.text or "").strip():
        return skipped(report, "noise")
    if report.intake == "import":
        return skipped(report, "imported")
    if kind == "done" and report.channel not in notify.done_channels:
        return skipped(report, "done_off_for_channel")
    if report.channel in WEBHOOK_ANSWERED:
        if kind == "ack" and report.intake == "webhook":
            return Plan(
                "sent", "webhook_response", report.connector, reason="ticket in the response"
            )
        return skipped(report, "no_reply_channel")
    if report.channel in DESK_CHANNELS:
        return skipped(report, "desk_receipt")
    if report.channel == "sms":
        return _plan_sms(report, extra)
    if report.channel == "email":
        return _plan_email(report, raw, extra, settings, kind)
    connector = BY_NAME.get(report.connector)
    if report.channel in CHAT_CHANNELS and connector is not None and connector.recipient:
        return _plan_chat(report, raw, connector.recipient, notify.meta_window_h, now)
    return skipped(report, "no_reply_channel")


def _plan_chat(
    report: Report,
    raw: Mapping[str, Any],
    find: FindRecipient,
    window_h: float,
    now: datetime,
) -> Plan:
    """An answer on the chat the citizen wrote on, to whom the connector says."""
    found = find(raw, report.reporter.channel_user_id)
    if isinstance(found, NoRecipient):
        return skipped(report, found.reason)
    key = f"{report.channel}:{found.to}"
    meta = dict(found.meta)
    if found.windowed:
        last = last_citizen_message_at(report)
        if found.after_window == "template":
            meta["after_window"] = "template"
            meta["ticket"] = report.ticket  # the template's parameter
        if now - last <= timedelta(hours=window_h):
            meta["last_message_at"] = last.isoformat()
        elif found.after_window == "template":
            meta["template"] = True
        else:
            return skipped(report, "outside_24h_window", key)
    return Plan("queued", report.channel, report.connector, key, found.to, meta=meta)


def _plan_sms(report: Report, extra: Mapping[str, Any]) -> Plan:
    phone = report.reporter.phone
    if not phone:
        sender = (report.reporter.channel_user_id or report.reporter.phone_raw or "").strip()
        compact = sender.lstrip("+").replace(" ", "")
        if any(ch.isalpha() for ch in compact):
            return skipped(report, "alphanumeric_sender")
        if compact.isdigit() and len(compact) <= 6:
            return skipped(report, "short_code")
        return skipped(report, "no_recipient")
    inbound_to = extra.get("To") or extra.get("to") or ""
    return Plan(
        "queued", "sms", report.connector, f"sms:{phone}", phone, meta={"from": str(inbound_to)}
    )


def _plan_email(
    report: Report,
    raw: Mapping[str, Any],
    extra: Mapping[str, Any],
    settings: Settings,
    kind: str,
) -> Plan:
    address = (report.reporter.email or "").strip().lower()
    if not address or "@" not in address:
        return skipped(report, "no_recipient")
    email = settings.channels.email
    ours = {r.lower() for r in email.recipients} | {email.from_address.lower()}
    if address in ours:
        return skipped(report, "own_address")  # a loop through our own mailbox
    if MACHINE_LOCALPARTS.match(address.split("@", 1)[0]):
        return skipped(report, "automated")
    # Backscatter: anyone can write any From. Only mail the receiving MTA vouched for is
    # answered; nothing of an unverified message (not even its subject) is ever sent back.
    verdict = sender_verified(
        extra.get("authentication_results") or [], address, email.trusted_authserv_ids
    )
    if not verdict.verified:
        return skipped(report, "sender_not_verified", f"email:{address}")
    written_to = [a for a in extra.get("to") or [] if a in ours]
    sender = (
        email.from_address
        or (written_to[0] if written_to else None)
        or (email.recipients[0] if email.recipients else "")
    )
    message_id = str(raw.get("external_id") or "")
    parent = f"<{message_id}>" if message_id and not message_id.startswith("sha256:") else ""
    ancestors = [f"<{i}>" for i in raw.get("in_reply_to") or [] if i][-20:]
    references = " ".join(dict.fromkeys([*reversed(ancestors[1:]), *ancestors[:1], parent]))
    domain = sender.split("@", 1)[1] if "@" in sender else "kanal.invalid"
    return Plan(
        "queued",
        "email",
        report.connector,
        f"email:{address}",
        address,
        meta={
            "from": sender,
            "in_reply_to": parent or None,
            "references": references.strip() or None,
            "domain": domain,
        },
    )
