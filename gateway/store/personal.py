"""Citizens' personal data in the store (UU PDP 27/2022): what kanal holds about one citizen,
and erasing it from reports closed longer ago than the retention policy or on request.

Erasing leaves a report anonymous: reporter, words, attachments, raw payloads and headers,
follow-up senders and messages to the citizen go; channel, category, owner, area, dates,
status and counts stay, so statistics do not change. Every erasure is a history entry.
On SQLite the store runs with `secure_delete` (gateway/store/engine.py), so what is
overwritten is zeroed in the file, and `checkpoint_sqlite` then empties the write-ahead log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.engine import Connection

from gateway.store.engine import sqlite_path
from gateway.store.schema import (
    attachments,
    decisions,
    media_jobs,
    outbound,
    raw_messages,
    report_history,
    reports,
)
from normalizers.report import Attachment, Report, Reporter, Suggestions

RETENTION_BY = "kanal:retention"
REQUEST_BY = "kanal:person-erase"
CLOSED = ("done", "rejected")
# History `changes` keep their values for these keys; any other value may hold a
# citizen's words or address and is erased (the key stays: what was changed, not to what).
SAFE_CHANGE_KEYS = frozenset(
    {"status", "owner", "category", "category_code", "attention", "suggestion", "geo_tagged"}
)
ERASED = "[erased]"


@dataclass
class Erased:
    """What one purge or erase took away, by kind."""

    reports: int = 0
    raw_messages: int = 0
    attachments: int = 0
    follow_ups: int = 0
    outbound: int = 0
    media_jobs: int = 0
    decisions: int = 0
    report_ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.reports} reports made anonymous, {self.raw_messages} raw messages "
            f"(payloads and headers), {self.attachments} attachments, {self.follow_ups} "
            f"follow-ups, {self.outbound} messages to citizens, {self.media_jobs} media jobs, "
            f"{self.decisions} admin decisions (with their texts)"
        )


@dataclass(frozen=True, slots=True)
class Citizen:
    """A data subject, by phone (E.164) or e-mail address."""

    phone: str | None = None
    email: str | None = None

    @property
    def reporter_key(self) -> str:
        return f"phone:{self.phone}" if self.phone else f"email:{self.email}"

    @property
    def needle(self) -> str:
        """What every stored form of the identity contains: an e-mail address as given, a
        phone's digits after the country code (raw payloads carry 0812…, 62812… or +62812…)."""
        if self.email:
            return self.email.lower()
        assert self.phone is not None
        return self.phone[3:] if self.phone.startswith("+62") else self.phone.lstrip("+")

    def matches(self, reporter: Reporter | None) -> bool:
        if reporter is None:
            return False
        if self.phone:
            return self.phone in (reporter.phone, reporter.channel_user_id)
        return (reporter.email or "").lower() == self.email


def _like(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _already_erased() -> Any:
    return exists().where(
        report_history.c.report_id == reports.c.id,
        report_history.c.by.in_((RETENTION_BY, REQUEST_BY)),
    )


# --- finding -------------------------------------------------------------------------------


def closed_before(conn: Connection, cutoff: datetime) -> list[str]:
    """Reports closed (done or rejected) and unchanged since before `cutoff`, not yet erased."""
    rows = conn.execute(
        select(reports.c.id)
        .where(
            reports.c.status.in_(CLOSED),
            reports.c.updated_at < cutoff,
            ~_already_erased(),
        )
        .order_by(reports.c.id)
    )
    return [row[0] for row in rows]


def _reports_of(conn: Connection, citizen: Citizen) -> tuple[list[str], list[str]]:
    """(reports this citizen made, other reports naming them, e.g. as a follow-up sender)."""
    own = [
        row[0]
        for row in conn.execute(
            select(reports.c.id).where(reports.c.reporter_key == citizen.reporter_key)
        )
    ]
    mentioned = [
        row[0]
        for row in conn.execute(
            select(reports.c.id).where(
                reports.c.doc.like(_like(citizen.needle), escape="\\"),
                reports.c.id.not_in(own),
            )
        )
    ]
    return own, mentioned


def _orphan_raw_of(conn: Connection, citizen: Citizen) -> list[str]:
    """Raw messages from this citizen that made no report (failed, held)."""
    return [
        row[0]
        for row in conn.execute(
            select(raw_messages.c.id).where(
                raw_messages.c.report_id.is_(None),
                or_(
                    raw_messages.c.message.like(_like(citizen.needle), escape="\\"),
                    raw_messages.c.headers.like(_like(citizen.needle), escape="\\"),
                ),
            )
        )
    ]


def _load(conn: Connection, report_id: str) -> Report:
    doc = conn.execute(select(reports.c.doc).where(reports.c.id == report_id)).scalar_one()
    return Report.model_validate_json(doc)


# --- export --------------------------------------------------------------------------------


def _payload(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def export_citizen(conn: Connection, citizen: Citizen) -> dict[str, Any]:
    """Everything the store holds about one citizen, as JSON-ready values."""
    own, mentioned = _reports_of(conn, citizen)
    report_ids = own + mentioned
    out: dict[str, Any] = {
        "subject": {"phone": citizen.phone, "email": citizen.email},
        "reports": [],
        "raw_messages": [],
        "outbound": [],
        "attachments": [],
    }
    digests: set[str] = set()
    for report_id in report_ids:
        report = _load(conn, report_id)
        doc = json.loads(report.model_dump_json())
        doc["history"] = [
            {
                "at": row.at.isoformat(),
                "status": row.status,
                "by": row.by,
                "note": row.note,
                "changes": json.loads(row.changes) if row.changes else None,
            }
            for row in conn.execute(
                select(report_history)
                .where(report_history.c.report_id == report_id)
                .order_by(report_history.c.id)
            )
        ]
        out["reports"].append(doc)
        digests |= {a.sha256 for a in _attachments_of(report) if a.sha256}
    raw_query = select(raw_messages).where(
        or_(
            raw_messages.c.report_id.in_(report_ids),
            raw_messages.c.id.in_(_orphan_raw_of(conn, citizen)),
        )
    )
    for row in conn.execute(raw_query.order_by(raw_messages.c.id)):
        out["raw_messages"].append(
            {
                "id": row.id,
                "connector": row.connector,
                "channel": row.channel,
                "received_at": row.received_at.isoformat(),
                "payload": _payload(row.payload),
                "headers": json.loads(row.headers or "{}"),
                "message": json.loads(row.message) if row.message else None,
                "report_id": row.report_id,
            }
        )
    for row in conn.execute(
        select(outbound).where(_outbound_of(citizen, report_ids)).order_by(outbound.c.id)
    ):
        out["outbound"].append(
            {
                "report_id": row.report_id,
                "kind": row.kind,
                "channel": row.channel,
                "recipient": row.recipient,
                "body": row.body,
                "state": row.state,
                "created_at": row.created_at.isoformat(),
            }
        )
    for row in conn.execute(
        select(attachments).where(attachments.c.sha256.in_(sorted(digests)))
    ).all():
        out["attachments"].append(
            {
                "sha256": row.sha256,
                "content_type": row.content_type,
                "size": row.size,
                "data_base64": base64.b64encode(row.data).decode(),
            }
        )
    return out


def _outbound_of(citizen: Citizen, report_ids: list[str]) -> Any:
    recipient = citizen.phone or citizen.email or ""
    return or_(
        and_(outbound.c.report_id.in_(report_ids), outbound.c.recipient == recipient),
        outbound.c.recipient.like(_like(citizen.needle), escape="\\"),
    )


# --- erasing -------------------------------------------------------------------------------


def _attachments_of(report: Report) -> Iterable[Attachment]:
    yield from report.attachments
    for follow_up in report.follow_ups:
        yield from follow_up.attachments


def _anonymous(attachment: Attachment) -> Attachment:
    # The count and kind of attachments stay; what they showed and where they came from go.
    return Attachment(
        content_type=attachment.content_type, size=attachment.size, state="unavailable"
    )


def _wipe_raw(conn: Connection, raw_ids: Iterable[str]) -> int:
    wiped = 0
    for raw_id in sorted(set(raw_ids)):
        row = conn.execute(
            select(raw_messages.c.external_id).where(raw_messages.c.id == raw_id)
        ).first()
        if row is None:
            continue
        # The channel's message id can carry an address (e-mail Message-IDs): a digest keeps
        # it unique for the dedupe constraint without keeping it.
        digest = "erased:" + hashlib.sha256(row[0].encode()).hexdigest()[:40]
        conn.execute(
            update(raw_messages)
            .where(raw_messages.c.id == raw_id)
            .values(
                payload=b"",
                headers="{}",
                message=None,
                error=None,
                group_key=None,
                external_id=row[0] if row[0].startswith("erased:") else digest,
            )
        )
        wiped += 1
    return wiped


def _redact_history(conn: Connection, report_id: str) -> None:
    for row in conn.execute(
        select(report_history.c.id, report_history.c.note, report_history.c.changes).where(
            report_history.c.report_id == report_id
        )
    ).all():
        changes = json.loads(row.changes) if row.changes else None
        if changes:
            changes = {k: (v if k in SAFE_CHANGE_KEYS else ERASED) for k, v in changes.items()}
        conn.execute(
            update(report_history)
            .where(report_history.c.id == row.id)
            .values(
                note=ERASED if row.note else None,
                changes=json.dumps(changes) if changes else None,
            )
        )


def erase_reports(
    conn: Connection,
    report_ids: Iterable[str],
    *,
    by: str,
    now: datetime,
    only_follow_ups_of: Citizen | None = None,
) -> Erased:
    """Make these reports anonymous (or, with `only_follow_ups_of`, take that citizen's
    follow-ups out of them), in the caller's transaction."""
    erased = Erased()
    digests: set[str] = set()
    for report_id in report_ids:
        report = _load(conn, report_id)
        digests |= {a.sha256 for a in _attachments_of(report) if a.sha256}
        raw_ids: list[str] = []
        if only_follow_ups_of is None:
            raw_ids += [
                row[0]
                for row in conn.execute(
                    select(raw_messages.c.id).where(raw_messages.c.report_id == report_id)
                )
            ]
            raw_ids.append(
                conn.execute(
                    select(reports.c.raw_message_id).where(reports.c.id == report_id)
                ).scalar_one()
            )
            report.reporter = Reporter()
            report.text = ""
            report.title = report.description = None
            report.attachments = [_anonymous(a) for a in report.attachments]
            report.location.address = None
            report.suggestions = Suggestions()
            report.lease = None
        follow_ups = []
        for follow_up in report.follow_ups:
            if only_follow_ups_of is None or only_follow_ups_of.matches(follow_up.sender):
                follow_up = follow_up.model_copy(
                    update={
                        "text": "",
                        "sender": None,
                        "attachments": [_anonymous(a) for a in follow_up.attachments],
                    }
                )
                if follow_up.raw_message_id:
                    raw_ids.append(follow_up.raw_message_id)
                erased.follow_ups += 1
            follow_ups.append(follow_up)
        report.follow_ups = follow_ups
        report.version += 1
        doc = report.model_dump(mode="json", exclude={"history"})
        values: dict[str, Any] = {
            "doc": json.dumps(doc, ensure_ascii=False),
            "version": report.version,
        }
        if only_follow_ups_of is None:
            values |= {
                "reporter_key": None,
                "group_key": None,
                "search_text": report.ticket.lower(),
            }
            _redact_history(conn, report_id)
            erased.outbound += conn.execute(
                update(outbound)
                .where(outbound.c.report_id == report_id)
                .values(recipient="", body="", meta=None, last_error=None)
            ).rowcount
            erased.media_jobs += conn.execute(
                delete(media_jobs).where(media_jobs.c.report_id == report_id)
            ).rowcount
            # Admins' decisions keep the text they were made on (for `kanal learn`).
            erased.decisions += conn.execute(
                delete(decisions).where(decisions.c.report_id == report_id)
            ).rowcount
            erased.reports += 1
            erased.report_ids.append(report_id)
        conn.execute(update(reports).where(reports.c.id == report_id).values(**values))
        erased.raw_messages += _wipe_raw(conn, raw_ids)
        conn.execute(
            report_history.insert().values(
                report_id=report_id,
                at=now,
                status=report.status,
                by=by,
                note="personal data erased",
                changes=None,
            )
        )
    erased.attachments += _drop_unreferenced(conn, digests)
    return erased


def _drop_unreferenced(conn: Connection, digests: set[str]) -> int:
    """Blobs no report refers to any more (one photo may be in several reports)."""
    dropped = 0
    for digest in sorted(digests):
        still_used = conn.execute(
            select(reports.c.id).where(reports.c.doc.like(f"%{digest}%")).limit(1)
        ).first()
        if still_used is None:
            dropped += conn.execute(
                delete(attachments).where(attachments.c.sha256 == digest)
            ).rowcount
    return dropped


def erase_citizen(conn: Connection, citizen: Citizen, *, now: datetime) -> Erased:
    """Everything about one citizen: their reports made anonymous, their follow-ups taken
    out of others' reports, messages to them and raw messages that made no report wiped."""
    own, mentioned = _reports_of(conn, citizen)
    erased = erase_reports(conn, own, by=REQUEST_BY, now=now)
    others = erase_reports(conn, mentioned, by=REQUEST_BY, now=now, only_follow_ups_of=citizen)
    erased.follow_ups += others.follow_ups
    erased.raw_messages += others.raw_messages + _wipe_raw(conn, _orphan_raw_of(conn, citizen))
    erased.attachments += others.attachments
    erased.outbound += conn.execute(
        update(outbound)
        .where(_outbound_of(citizen, own + mentioned))
        .values(recipient="", body="", meta=None, last_error=None)
    ).rowcount
    return erased


def checkpoint_sqlite(path: Path) -> bool:
    """Copy the write-ahead log into the database file and truncate it, so the old versions
    of erased rows leave the -wal file too. False when readers kept it from finishing."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout=30000")
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        connection.close()
    return not busy


async def purge(store: Any, days: int, *, dry_run: bool = False) -> tuple[Erased, bool | None]:
    """Apply the retention policy: erase personal data of reports closed more than `days`
    ago. Returns what was (or, dry, would be) erased and, on SQLite, whether the
    write-ahead log was emptied too (None on PostgreSQL or when nothing changed)."""
    now = store.clock()
    cutoff = now - timedelta(days=days)

    def work(conn: Connection) -> Erased:
        ids = closed_before(conn, cutoff)
        if dry_run:
            return Erased(reports=len(ids), report_ids=ids)
        return erase_reports(conn, ids, by=RETENTION_BY, now=now)

    if dry_run:
        async with store.read() as conn:
            return await conn.run_sync(work), None
    erased = await store.run_write(work)
    path = sqlite_path(store.url)
    if not erased.reports or path is None:
        return erased, None
    return erased, await asyncio.to_thread(checkpoint_sqlite, path)
