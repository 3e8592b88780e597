"""E-mail threading: a reply to a report becomes a follow-up of that report, not a new one.

A reply is recognised by In-Reply-To/References naming the Message-ID of mail that already
became (or joined) a report, then by a ticket number (`KNL-XXXX-XXXX`) in its subject.
Machine mail (auto-replies, bounces) never threads: it is rejected as `automated` instead,
so an out-of-office answer to kanal's own mail cannot pile onto a citizen's report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import select

from connectors.base import RawMessage
from gateway.store import Store
from gateway.store.schema import raw_messages
from normalizers.canonical import attachments_of
from normalizers.report import FollowUp, HistoryEntry, Report

MAX_REFERENCES = 100  # a References header can be long; the newest ids are at its end


def threads_by_email(message: RawMessage) -> bool:
    """Whether the pipeline should look for the report this message answers."""
    if message.channel != "email" or message.automated:
        return False
    return bool(message.in_reply_to or message.extra.get("ticket_in_subject"))


async def find_thread(
    store: Store, message: RawMessage, *, batch: Mapping[str, str] | None = None
) -> str | None:
    """The id of the report this e-mail answers, or None.

    `batch` maps the external ids and tickets of reports made earlier in the same pipeline
    batch (not yet committed) to their report ids, so a mailbox backfill threads too.
    """
    if not threads_by_email(message):
        return None
    batch = batch or {}
    ids = [i for i in message.in_reply_to if i][:MAX_REFERENCES]
    if ids:
        for candidate in ids:
            if candidate in batch:
                return batch[candidate]
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
                return str(by_id[candidate[:255]])
    ticket = message.extra.get("ticket_in_subject")
    if isinstance(ticket, str) and ticket:
        if ticket in batch:
            return batch[ticket]
        return await store.report_id_by_ticket(ticket)
    return None


async def thread_follow_up(
    store: Store, message: RawMessage, raw_id: str, now: datetime, batch: Mapping[str, str]
) -> tuple[list[str], str, Callable[[Report], Report]] | None:
    """The pipeline's hook: `(raw ids, report id, change)` for `Store.settle_raw(follow_ups=…)`
    when this message answers a report (its attachments are stored first), else None."""
    report_id = await find_thread(store, message, batch=batch)
    if report_id is None:
        return None
    change, blobs = follow_up_change(message, raw_id, now)
    for digest, content_type, data in blobs:
        await store.put_blob(digest, content_type, data)
    return [raw_id], report_id, change


def follow_up_change(
    message: RawMessage, raw_id: str, now: datetime
) -> tuple[Callable[[Report], Report], list[tuple[str, str, bytes]]]:
    """The change that appends this message to a report, and the attachment blobs to store
    first as (sha256, content type, bytes)."""
    attachments, blobs = attachments_of([message])
    follow_up = FollowUp(
        at=message.received_at,
        channel=message.channel,
        text=message.text,
        attachments=attachments,
        raw_message_id=raw_id,
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
