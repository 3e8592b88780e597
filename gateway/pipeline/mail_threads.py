"""E-mail threading: a reporter's reply becomes a follow-up of their report, not a new one.

A reply is recognised by In-Reply-To/References naming a Message-ID kanal sent (its
acknowledgement or news), or of mail that already became (or joined) a report, then by a
ticket number (`KNL-XXXX-XXXX`) in its subject. It joins that report only when it comes
from the report's reporter: the same address (compared case-insensitively),
or a reply to mail kanal sent that citizen. Anyone else's mail opens a new report, with
the one it names offered as a duplicate suggestion. Machine mail (auto-replies, bounces)
never threads: it is rejected as `automated` instead, so an out-of-office answer to kanal's
own mail cannot pile onto a citizen's report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from connectors.base import RawMessage
from gateway.store import Store
from gateway.store.schema import outbound, raw_messages
from normalizers.canonical import attachments_of, reporter_of
from normalizers.report import DuplicateSuggestion, FollowUp, HistoryEntry, Report

MAX_REFERENCES = 100  # a References header can be long; the newest ids are at its end
# The Message-ID of mail kanal sends: "<{kind}.{report id}@{domain}>" (gateway/notify.py).
_OUR_MESSAGE_ID = re.compile(r"^(ack|done)\.([0-9a-z]{26})@", re.IGNORECASE)

Change = Callable[[Report], Report]


@dataclass(frozen=True, slots=True)
class Thread:
    """The report an e-mail names, and how: "our_mail" (a reply to mail kanal sent that
    citizen), "reference" (to mail of the report) or "ticket" (in the subject)."""

    report_id: str
    via: str


def threads_by_email(message: RawMessage) -> bool:
    """Whether the pipeline should look for the report this message answers."""
    if message.channel != "email" or message.automated:
        return False
    return bool(message.in_reply_to or message.extra.get("ticket_in_subject"))


async def find_thread(
    store: Store, message: RawMessage, *, batch: Mapping[str, str] | None = None
) -> Thread | None:
    """The report this e-mail answers, or None.

    `batch` maps the external ids and tickets of reports made earlier in the same pipeline
    batch (not yet committed) to their report ids, so a mailbox backfill threads too.
    """
    if not threads_by_email(message):
        return None
    batch = batch or {}
    ids = [i for i in message.in_reply_to if i][:MAX_REFERENCES]
    if ids:
        ours = await _sent_by_us(store, ids)
        if ours is not None:
            return Thread(ours, "our_mail")
        for candidate in ids:
            if candidate in batch:
                return Thread(batch[candidate], "reference")
        async with store.read() as conn:
            rows = (
                await conn.execute(
                    select(raw_messages.c.external_id, raw_messages.c.report_id).where(
                        raw_messages.c.connector == message.connector,
                        raw_messages.c.external_id.in_([i[:255] for i in ids]),
                        raw_messages.c.report_id.is_not(None),
                    )
                )
            ).all()
        by_id = {external_id: report_id for external_id, report_id in rows}
        # In-Reply-To comes first in `in_reply_to`, then References: the closest ancestor wins.
        for candidate in ids:
            if candidate[:255] in by_id:
                return Thread(str(by_id[candidate[:255]]), "reference")
    ticket = message.extra.get("ticket_in_subject")
    if isinstance(ticket, str) and ticket:
        found = batch.get(ticket) or await store.report_id_by_ticket(ticket)
        return Thread(found, "ticket") if found else None
    return None


async def _sent_by_us(store: Store, ids: list[str]) -> str | None:
    """The report whose mail to the citizen one of `ids` names (a Message-ID kanal sent)."""
    wanted: dict[str, str] = {}
    for candidate in ids:
        match = _OUR_MESSAGE_ID.match(candidate)
        if match:
            wanted.setdefault(match.group(2).upper(), f"<{candidate}>")
    if not wanted:
        return None
    async with store.read() as conn:
        rows = (
            await conn.execute(
                select(outbound.c.report_id, outbound.c.meta).where(
                    outbound.c.report_id.in_(list(wanted)),
                    outbound.c.channel == "email",
                    outbound.c.state == "sent",
                )
            )
        ).all()
    for report_id, meta in rows:
        sent = json.loads(meta).get("message_id") if meta else None
        if sent == wanted.get(report_id):
            return str(report_id)
    return None


def same_address(a: str | None, b: str | None) -> bool:
    """Two e-mail addresses are the same mailbox (address part, case-insensitive)."""
    if not a or not b:
        return False
    return a.strip().lower() == b.strip().lower()


async def thread_follow_up(
    store: Store,
    message: RawMessage,
    raw_id: str,
    now: datetime,
    batch: Mapping[str, str],
    made: Mapping[str, Report],
) -> tuple[list[str], str, Change] | DuplicateSuggestion | None:
    """The pipeline's hook. When this message answers a report: `(raw ids, report id,
    change)` for `Store.settle_raw(follow_ups=…)` if it comes from the report's reporter
    (its attachments are stored first), else the duplicate suggestion for the new report it
    opens. None when it answers no report. `made`: reports of this batch, by id."""
    thread = await find_thread(store, message, batch=batch)
    if thread is None:
        return None
    report = made.get(thread.report_id) or await store.get_report(
        thread.report_id, with_history=False
    )
    if report is None:
        return None
    if thread.via != "our_mail" and not same_address(message.sender.email, report.reporter.email):
        why = (
            f"its ticket {report.ticket} is in the subject"
            if thread.via == "ticket"
            else "a reply to that report's mail"
        )
        return DuplicateSuggestion(
            id=report.id, ticket=report.ticket, why=f"{why}, from another sender"
        )
    change, blobs = follow_up_change(message, raw_id, now)
    for digest, content_type, data in blobs:
        await store.put_blob(digest, content_type, data)
    return [raw_id], report.id, change


def follow_up_change(
    message: RawMessage, raw_id: str, now: datetime
) -> tuple[Change, list[tuple[str, str, bytes]]]:
    """The change that appends this message to a report, and the attachment blobs to store
    first as (sha256, content type, bytes)."""
    attachments, blobs = attachments_of([message])
    follow_up = FollowUp(
        at=message.received_at,
        channel=message.channel,
        text=message.text,
        attachments=attachments,
        raw_message_id=raw_id,
        sender=reporter_of(message),
    )

    def change(report: Report) -> Report:
        if any(f.raw_message_id == raw_id for f in report.follow_ups):
            return report.model_copy(update={"history": []})  # replayed settle: nothing new
        return report.model_copy(
            update={
                "follow_ups": [*report.follow_ups, follow_up],
                "history": [
                    HistoryEntry(
                        at=now, status="follow_up", by="system", note=f"e-mail reply (raw {raw_id})"
                    )
                ],
            }
        )

    return change, [(b.sha256, b.content_type, b.data) for b in blobs]
