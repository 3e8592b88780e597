"""What chat channels send besides complaints, and what becomes of it (never a report):

- a status (kind "status") of a message kanal sent is recorded on its `outbound` row: a
  `failed` delivery turns the row failed with the platform's reason; delivered and read
  are kept in the row's meta (`delivery`, `delivery_at`);
- a greeting (kind "greeting", or a first "halo" on a chat with no open conversation) is
  answered with `notify.welcome_text` through an `outbound` row of kind "welcome" (keyed by
  the raw message; the notifier sends it like any other), at most one a day per citizen.

The raw messages stay on record, settled as ignored with what was done about them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import and_, insert, select, update

from connectors import BY_NAME
from connectors.base import RawMessage
from connectors.outbound import ERROR_CHARS, NoRecipient
from gateway.store import Store
from gateway.store.ids import new_id
from gateway.store.schema import outbound
from normalizers.text import is_greeting

_DELIVERY_ORDER = {"sent": 1, "delivered": 2, "read": 3}
WELCOME_EVERY = timedelta(days=1)  # one welcome per citizen and day


async def record_delivery(store: Store, message: RawMessage) -> str:
    """Record a status on the outbound row it concerns; returns the note for the raw row."""
    delivery = message.extra.get("delivery") or {}
    provider_id = str(delivery.get("provider_message_id") or "")[:255]
    state = str(delivery.get("state") or "")
    where = [
        outbound.c.connector == message.connector,
        outbound.c.provider_message_id == provider_id,
    ]
    if message.sender.user_id:  # the row's recipient: served by its index
        where.append(outbound.c.recipient == f"{message.channel}:{message.sender.user_id}")
    async with store.write() as conn:
        row = (
            await conn.execute(
                select(outbound.c.id, outbound.c.state, outbound.c.meta).where(*where).limit(1)
            )
        ).first()
        if row is None:
            return f"status {state} of a message kanal has no record of"
        meta = json.loads(row.meta) if row.meta else {}
        values: dict[str, object] = {}
        if state == "failed":
            error = str(delivery.get("error") or "no reason given")
            values = {"state": "failed", "last_error": f"delivery failed: {error}"[:ERROR_CHARS]}
            meta.update(delivery="failed", delivery_at=message.received_at.isoformat())
        elif meta.get("delivery") != "failed" and _DELIVERY_ORDER.get(
            state, 0
        ) > _DELIVERY_ORDER.get(str(meta.get("delivery")), 0):
            meta.update(delivery=state, delivery_at=message.received_at.isoformat())
        else:
            return f"status {state} of outbound {row.id} (already known)"
        values["meta"] = json.dumps(meta, ensure_ascii=False)
        await conn.execute(update(outbound).where(outbound.c.id == row.id).values(**values))
    return f"status {state} of outbound {row.id}"


def greets(message: RawMessage) -> bool:
    """A greeting, said so by its connector or, on a chat, a few words of hello alone."""
    if message.kind == "greeting":
        return True
    spec = BY_NAME.get(message.connector)
    return (
        message.kind == "message"
        and spec is not None
        and spec.answers == "chat"
        and not message.attachments
        and message.coordinates is None
        and is_greeting(message.text)
    )


async def welcome(store: Store, message: RawMessage, raw_id: str, text: str, now: datetime) -> str:
    """Record the welcome for a greeting (queued, or skipped with the reason); returns the
    note for the raw row."""
    spec = BY_NAME.get(message.connector)
    if spec is None or spec.recipient is None:
        return "greeting; nobody to answer on this channel"
    found = spec.recipient(message.to_json(), message.sender.user_id)
    if isinstance(found, NoRecipient):
        return f"greeting; not answered ({found.reason})"
    recipient = f"{message.channel}:{found.to}"
    meta = {**found.meta, "last_message_at": message.received_at.isoformat()}
    async with store.write() as conn:
        if (
            await conn.execute(
                select(outbound.c.id).where(
                    outbound.c.report_id == raw_id, outbound.c.kind == "welcome"
                )
            )
        ).first() is not None:
            return "greeting; welcome already recorded"
        recent = (
            await conn.execute(
                select(outbound.c.id)
                .where(
                    and_(
                        outbound.c.recipient == recipient,
                        outbound.c.kind == "welcome",
                        outbound.c.created_at >= now - WELCOME_EVERY,
                        outbound.c.state.in_(("queued", "sending", "sent")),
                    )
                )
                .limit(1)
            )
        ).first()
        state = "skipped" if recent is not None else "queued"
        await conn.execute(
            insert(outbound).values(
                id=new_id(),
                report_id=raw_id,  # no report: the raw message it answers
                kind="welcome",
                channel=message.channel,
                connector=message.connector,
                recipient=recipient,
                body=text if state == "queued" else "",
                state=state,
                attempts=0,
                last_error="welcomed within the last day" if recent is not None else None,
                created_at=now,
                meta=json.dumps(meta, ensure_ascii=False),
            )
        )
    if state == "queued":
        store.notify_new_work()
    return "greeting; welcome " + ("queued" if state == "queued" else "skipped (sent lately)")
