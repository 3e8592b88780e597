"""Conversations: a citizen's messages in a row become one report, not one report each.

Direct messages (Meta, X, Telegram: group key "dm:…") gather into the report their
conversation started while they keep coming within `pipeline.conversation_window_s` of the
conversation's latest message: the text is joined with a newline, attachments appended, a
"joined" history entry written, and a location that arrives later geo-tags the report.
Once the report is with the CRM (posting, posted, in progress, done, failed) a message in
the window becomes a follow-up (`report.follow_ups`) instead. A rejected report never
gathers: the next message starts a new one. Telegram albums ("album:…", one update per
photo) gather the same way, captions joined and photos appended; an album in a private
chat belongs to that chat's conversation.

Only the reporter can feed a report this way: a conversation's key names the
chat user (Meta and X "dm:<channel>:<page or account>:<user>", Telegram "dm:telegram:<private
chat>", whose id is the user's), and an album is one user's; every follow-up records its
sender.

An unsent message (Meta `is_deleted`, kind "delete") is recorded on the report of the
message it removes; edits (Telegram live locations) stay ignored.

The pipeline calls `Conversations.follow_up` for each message, like the e-mail threading
hook: it returns `(raw ids, report id, change)` for `Store.settle_raw(follow_ups=…)`. The
decision join / follow-up is taken inside `change`, on the report as it is when settled.
The report is found by `reports.group_key` (written when the report is created, see
`Store.settle_raw(group_keys=…)`); the conversation's latest message time is kept in the
"joined"/"follow_up" history entries (`changes.message_at`). Messages of one pipeline
batch see each other through the batch map the pipeline passes around.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from connectors.base import RawMessage
from gateway.pipeline.learning import ActiveModels
from gateway.store import Store
from gateway.store.schema import raw_messages, report_history, reports
from normalizers.canonical import build_report
from normalizers.category import Taxonomy
from normalizers.geo import AreaIndex
from normalizers.report import FollowUp, HistoryEntry, Report

# Statuses in which a new message still joins the report itself.
JOINABLE = ("received", "pending_enrichment", "ready")
# Albums arrive as one update per photo within seconds: gathered even when conversations
# are turned off (window 0).
ALBUM_GRACE_S = 60.0
_BATCH_PREFIX = "conversation:"

Change = Callable[[Report], Report]


@dataclass(frozen=True)
class Thread:
    """The report a conversation currently feeds, and the span of its messages."""

    report_id: str
    first_at: datetime
    last_at: datetime
    status: str

    def encode(self) -> str:
        return (
            f"{self.report_id} {self.first_at.timestamp()} {self.last_at.timestamp()} {self.status}"
        )

    @classmethod
    def decode(cls, value: str) -> Thread:
        report_id, first, last, status = value.split(" ")
        return cls(
            report_id,
            datetime.fromtimestamp(float(first), UTC),
            datetime.fromtimestamp(float(last), UTC),
            status,
        )


def conversation_key(message: RawMessage, window_s: float) -> tuple[str, float] | None:
    """The key whose report this message may join, and the window that applies."""
    key = message.group_key or ""
    if message.kind != "message" or message.part is not None:
        return None
    if key.startswith("dm:"):
        return key, window_s
    if key.startswith("album:"):
        window = max(window_s, ALBUM_GRACE_S)
        chat = message.extra.get("chat_id")
        if message.extra.get("chat_type") == "private" and chat is not None:
            return f"dm:{message.channel}:{chat}", window
        return key, window
    return None


def group_key_for(message: RawMessage) -> str | None:
    """The key stored on a report this message starts (see `conversation_key`)."""
    found = conversation_key(message, 0.0)
    return found[0] if found else None


class Conversations:
    def __init__(
        self,
        store: Store,
        *,
        window_s: float,
        areas: AreaIndex,
        taxonomy: Taxonomy,
        owner_of: Callable[[RawMessage], str],
        models: ActiveModels,
    ):
        self.store = store
        self.models = models
        self.window_s = window_s
        self.areas = areas
        self.taxonomy = taxonomy
        self.owner_of = owner_of

    # -- the pipeline's hooks

    def note_created(
        self, batch: MutableMapping[str, str], message: RawMessage, report: Report
    ) -> str | None:
        """Remember a report this batch created; returns the group key to store with it."""
        key = group_key_for(message)
        if key is not None:
            at = message.received_at
            batch[_BATCH_PREFIX + key] = Thread(report.id, at, at, report.status).encode()
        return key

    async def follow_up(
        self,
        message: RawMessage,
        raw_id: str,
        intake: str,
        now: datetime,
        batch: MutableMapping[str, str],
    ) -> tuple[list[str], str, Change] | None:
        """`(raw ids, report id, change)` when this message joins or follows up a report of
        its conversation, else None (it starts a report of its own)."""
        found = conversation_key(message, self.window_s)
        if found is None:
            return None
        key, window_s = found
        thread = await self._thread(key, batch)
        if thread is None or thread.status == "rejected":
            return None
        window = timedelta(seconds=window_s)
        at = message.received_at
        if not (thread.first_at - window <= at <= thread.last_at + window):
            return None
        normalized = build_report(
            [message],
            report_id=thread.report_id,
            ticket="-",
            intake=intake,
            now=now,
            channel_owner=self.owner_of(message),
            areas=self.areas,
            taxonomy=self.taxonomy,
            models=self.models.current,
        )
        for blob in normalized.blobs:
            await self.store.put_blob(blob.sha256, blob.content_type, blob.data)
        batch[_BATCH_PREFIX + key] = Thread(
            thread.report_id, min(thread.first_at, at), max(thread.last_at, at), thread.status
        ).encode()
        batch[message.external_id] = thread.report_id
        change = _gather(message, raw_id, now, normalized.report, self.owner_of(message))
        return [raw_id], thread.report_id, change

    async def aside(
        self, message: RawMessage, raw_id: str, now: datetime, batch: MutableMapping[str, str]
    ) -> tuple[list[str], str, Change] | None:
        """A reaction, sticker or contact card (kind "reaction"): a follow-up of the
        citizen's open report (not rejected, not done), whatever its age; else None."""
        key = message.group_key or ""
        if message.kind != "reaction" or not key.startswith("dm:"):
            return None
        thread = await self._thread(key, batch)
        if thread is None or thread.status in ("rejected", "done"):
            return None
        alone = build_report(
            [message],
            report_id=thread.report_id,
            ticket="-",
            intake="webhook",
            now=now,
            channel_owner=self.owner_of(message),
            areas=self.areas,
            taxonomy=self.taxonomy,
        ).report
        note = f"reaction {raw_id} of the citizen"
        changes: dict[str, object] = {"raw_message_id": raw_id}

        def change(report: Report) -> Report:
            return _with_follow_up(report, message, raw_id, now, alone, note, changes)

        return [raw_id], thread.report_id, change

    async def unsent(
        self, message: RawMessage, raw_id: str, now: datetime, batch: MutableMapping[str, str]
    ) -> tuple[list[str], str, Change] | None:
        """An unsend (kind "delete") recorded on the report of the message it removes."""
        target = message.extra.get("deletes")
        if message.kind != "delete" or not isinstance(target, str) or not target:
            return None
        report_id = batch.get(target)
        if report_id is None:
            async with self.store.read() as conn:
                row = (
                    await conn.execute(
                        select(raw_messages.c.report_id).where(
                            raw_messages.c.connector == message.connector,
                            raw_messages.c.external_id == target[:255],
                            raw_messages.c.report_id.is_not(None),
                        )
                    )
                ).first()
            report_id = row[0] if row else None
        if report_id is None:
            return None

        def change(report: Report) -> Report:
            entry = HistoryEntry(
                at=now,
                status="unsent",
                by="system",
                note=f"the citizen unsent message {target}",
                changes={"raw_message_id": raw_id, "unsent": target},
            )
            return report.model_copy(update={"history": [entry]})

        return [raw_id], str(report_id), change

    # -- finding the conversation's report

    async def _thread(self, key: str, batch: MutableMapping[str, str]) -> Thread | None:
        cached = batch.get(_BATCH_PREFIX + key)
        if cached is not None:
            return Thread.decode(cached)
        async with self.store.read() as conn:
            row = (
                await conn.execute(
                    select(reports.c.id, reports.c.received_at, reports.c.status)
                    .where(reports.c.group_key == key[:255])
                    .order_by(reports.c.received_at.desc(), reports.c.id.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                return None
            last_at = row.received_at
            entries = await conn.execute(
                select(report_history.c.changes)
                .where(
                    report_history.c.report_id == row.id,
                    report_history.c.status.in_(("joined", "follow_up")),
                )
                .order_by(report_history.c.id.desc())
                .limit(20)
            )
            for (changes,) in entries:
                at = _message_at(changes)
                if at is not None and at > last_at:
                    last_at = at
        thread = Thread(row.id, row.received_at, last_at, row.status)
        batch[_BATCH_PREFIX + key] = thread.encode()
        return thread


def _message_at(changes: str | None) -> datetime | None:
    if not changes:
        return None
    try:
        value = json.loads(changes).get("message_at")
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, AttributeError):
        return None


def _with_follow_up(
    report: Report,
    message: RawMessage,
    raw_id: str,
    now: datetime,
    alone: Report,
    note: str,
    changes: dict[str, object],
) -> Report:
    """`report` with `message` (normalized on its own as `alone`) as a follow-up."""
    follow_up = FollowUp(
        at=message.received_at,
        channel=message.channel,
        text=message.text,
        attachments=alone.attachments,
        raw_message_id=raw_id,
        sender=alone.reporter,
    )
    entry = HistoryEntry(at=now, status="follow_up", by="system", note=note, changes=changes)
    return report.model_copy(
        update={"follow_ups": [*report.follow_ups, follow_up], "history": [entry]}
    )


def _gather(
    message: RawMessage, raw_id: str, now: datetime, alone: Report, channel_owner: str
) -> Change:
    """The change that adds `message` (normalized on its own as `alone`) to a report."""
    changes: dict[str, object] = {
        "raw_message_id": raw_id,
        "message_at": message.received_at.isoformat(),
    }

    def change(report: Report) -> Report:
        if report.status not in JOINABLE:
            note = f"message {raw_id} after the report went to the CRM"
            return _with_follow_up(report, message, raw_id, now, alone, note, changes)
        update: dict[str, object] = {
            "text": "\n".join(t for t in (report.text, message.text) if t),
            "attachments": [*report.attachments, *alone.attachments],
            "confidential": report.confidential or alone.confidential,
        }
        history = [
            HistoryEntry(
                at=now,
                status="joined",
                by="system",
                note=f"message {raw_id} joined the conversation",
                changes=changes,
            )
        ]
        if report.category.code == "unknown" and alone.category.code != "unknown":
            update["category"] = alone.category
        # A location sent after the words (a common way to write): it geo-tags the report,
        # unless a person already placed it.
        if (
            report.location.lat is None
            and alone.location.lat is not None
            and report.location.source != "admin"
        ):
            update["location"] = alone.location
            update["geo_tagged"] = alone.geo_tagged
            update["non_geo_reason"] = alone.non_geo_reason
            update["suggestions"] = alone.suggestions if alone.geo_tagged else report.suggestions
            if (
                alone.geo_tagged
                and report.status == "pending_enrichment"
                and (report.owner == channel_owner)
            ):
                update["owner"] = alone.owner
                update["status"] = "ready"
                history.append(
                    HistoryEntry(
                        at=now,
                        status="ready",
                        by="system",
                        note=f"owner {alone.owner} (location from a later message)",
                    )
                )
        update["history"] = history
        return report.model_copy(update=update)

    return change
