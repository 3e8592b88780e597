"""Canonical reports in the store: insert, load, save with versions and history, scoped
listings with cursors, statistics, and the blobs of attachments."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.bulk import execute_many
from gateway.store.engine import StoreEngine
from gateway.store.learning import record_decisions_sync
from gateway.store.schema import (
    attachments,
    outbound,
    report_history,
    reports,
)
from gateway.store.scope import scope_condition
from normalizers.report import HistoryEntry, Notification, Report

MAX_FLAGGED = 10_000  # reports flagged for attention merged into one queue page, at most


# `attention IS NOT NULL`, written as a range so that SQLite reads it from the index.
FLAGGED = reports.c.attention > ""


_INSERT_REPORT = reports.insert()


_INSERT_HISTORY = report_history.insert()


_UPDATE_REPORT = update(reports).where(reports.c.id == bindparam("report_id"))


_UPDATE_REPORT_AT_VERSION = _UPDATE_REPORT.where(reports.c.version == bindparam("expected_version"))


def _insert_history(conn: Connection, entries: Sequence[tuple[str, HistoryEntry]]) -> None:
    if not entries:
        return
    execute_many(
        conn,
        _INSERT_HISTORY,
        [
            {
                "report_id": report_id,
                "at": e.at,
                "status": e.status,
                "by": e.by,
                "note": e.note,
                "changes": json.dumps(e.changes, default=str) if e.changes else None,
            }
            for report_id, e in entries
        ],
    )


class ReportStore(StoreEngine):
    """Reports and their history."""

    async def put_blob_in(
        self, conn: AsyncConnection, digest: str, content_type: str, data: bytes, now: datetime
    ) -> None:
        await conn.run_sync(self._put_blob_sync, digest, content_type, data, now)

    def _put_blob_sync(
        self, conn: Connection, digest: str, content_type: str, data: bytes, now: datetime
    ) -> None:
        stmt = self._insert(attachments).on_conflict_do_nothing(index_elements=["sha256"])
        conn.execute(
            stmt,
            {
                "sha256": digest,
                "content_type": content_type,
                "size": len(data),
                "data": data,
                "created_at": now,
            },
        )

    async def put_blob(self, digest: str, content_type: str, data: bytes) -> None:
        async with self.write() as conn:
            await self.put_blob_in(conn, digest, content_type, data, self.clock())

    async def get_blob(self, digest: str) -> tuple[str, bytes] | None:
        async with self.read() as conn:
            row = (
                await conn.execute(
                    select(attachments.c.content_type, attachments.c.data).where(
                        attachments.c.sha256 == digest
                    )
                )
            ).first()
        return (row[0], row[1]) if row else None

    @staticmethod
    def _columns(report: Report) -> dict[str, Any]:
        search = " ".join(
            p for p in (report.ticket, report.title, report.text, report.description) if p
        ).lower()
        reporter = report.reporter
        key = (
            f"phone:{reporter.phone}"
            if reporter.phone
            else f"email:{reporter.email}"
            if reporter.email
            else f"{report.channel}:{reporter.channel_user_id}"
            if reporter.channel_user_id
            else None
        )
        return {
            "ticket": report.ticket,
            "channel": report.channel,
            "connector": report.connector,
            "received_at": report.received_at,
            "owner": report.owner,
            "kelurahan_code": report.location.kelurahan.code if report.location.kelurahan else None,
            "geo_tagged": report.geo_tagged,
            "category_code": report.category.code,
            "reporter_key": key,
            "search_text": search,
            "lease_holder": report.lease.holder if report.lease else None,
            "lease_until": report.lease.until if report.lease else None,
            "attention": report.attention,
            **ReportStore._delivery_columns(report),
        }

    @staticmethod
    def _delivery_columns(report: Report) -> dict[str, Any]:
        """The columns a delivery step can change (status, version, attempts, next attempt,
        and the document): an UPDATE that sets only these leaves the indexes on the
        others (ticket, kelurahan, channel, reporter, received, attention) untouched."""
        return {
            "status": report.status,
            "version": report.version,
            "attempts": report.delivery.attempts,
            "next_attempt_at": report.delivery.next_attempt_at,
            # The same JSON as model_dump + json.dumps, a quarter of the time (pydantic's
            # own serializer, compact): this runs at every write of a report.
            "doc": report.model_dump_json(exclude={"history"}),
        }

    async def insert_report(
        self, conn: AsyncConnection, report: Report, raw_message_id: str, group_key: str | None
    ) -> None:
        """A new report and its first history."""
        items = [(report, raw_message_id, group_key)]
        if await conn.run_sync(self._insert_reports_sync, items, self.clock()):
            self.hook_work_done()

    def _insert_reports_sync(
        self, conn: Connection, items: Sequence[tuple[Report, str, str | None]], now: datetime
    ) -> bool:
        # Parameters beside a static statement: SQLAlchemy reuses its compiled form
        # (building `.values(**columns)` per report cost more than the insert itself).
        execute_many(
            conn,
            _INSERT_REPORT,
            [
                {
                    "id": report.id,
                    "raw_message_id": raw_message_id,
                    "group_key": group_key,
                    "updated_at": now,
                    **self._columns(report),
                }
                for report, raw_message_id, group_key in items
            ],
        )
        _insert_history(
            conn, [(report.id, entry) for report, _, _ in items for entry in report.history]
        )
        return self._run_hooks(conn, [report for report, _, _ in items])

    def _run_hooks(self, conn: Connection, written: Sequence[Report]) -> bool:
        fired = False
        for report in written:
            for hook in self.report_hooks:
                fired = hook(conn, report) or fired
        return fired

    async def append_history(
        self, conn: AsyncConnection, report_id: str, entries: Sequence[HistoryEntry]
    ) -> None:
        if entries:
            await conn.run_sync(_insert_history, [(report_id, e) for e in entries])

    async def load_report(
        self, conn: AsyncConnection, report_id: str, *, for_update: bool = False
    ) -> Report | None:
        # `report_id` may be the ticket instead: every API path takes either.
        ticket = report_id.upper() if report_id[:4].upper() == "KNL-" else None
        stmt = select(reports.c.doc).where(
            reports.c.ticket == ticket if ticket else reports.c.id == report_id
        )
        if for_update and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).first()
        return Report.model_validate_json(row[0]) if row else None

    async def save_report(
        self, conn: AsyncConnection, report: Report, expected_version: int | None
    ) -> bool:
        """Write a changed report (version bumped here) and its new history entries."""
        saved, fired = await conn.run_sync(self.save_report_sync, report, expected_version)
        if fired:
            self.hook_work_done()
        return saved

    def save_report_sync(
        self, conn: Connection, report: Report, expected_version: int | None
    ) -> tuple[bool, bool]:
        """save_report inside a synchronous transaction (Store.run_write): (saved, a report
        hook queued work — then call hook_work_done() once back on the event loop)."""
        new_entries = list(report.history)
        report = report.model_copy(update={"version": report.version + 1, "history": []})
        params = {"report_id": report.id, "updated_at": self.clock(), **self._columns(report)}
        if expected_version is None:
            result = conn.execute(_UPDATE_REPORT, params)
        else:
            params["expected_version"] = expected_version
            result = conn.execute(_UPDATE_REPORT_AT_VERSION, params)
        if result.rowcount != 1:
            return False, False
        _insert_history(conn, [(report.id, e) for e in new_entries])
        record_decisions_sync(conn, report, new_entries)
        return True, self._run_hooks(conn, [report])

    def save_reports_sync(
        self,
        conn: Connection,
        items: Sequence[tuple[Report, bool, Mapping[str, Any]]],
        *,
        delivery_only: bool = False,
    ) -> tuple[list[Report], bool]:
        """Write several changed reports in a few statements (one UPDATE executed for all,
        one INSERT of their new history entries): (report, bump, other columns) each, the
        same other columns for every item. The caller holds the rows (PostgreSQL: read FOR
        UPDATE in this transaction; SQLite: the one writer), so no version check. `bump`
        is False for bookkeeping the API does not treat as a change (a retry's attempt
        count and next attempt). `delivery_only`: the items changed nothing but what
        `_delivery_columns` writes (status, delivery, crm, history), so only those columns
        are set. Returns the reports as stored (without history) and whether a report
        hook queued work (then call hook_work_done())."""
        if not items:
            return [], False
        now = self.clock()
        columns = self._delivery_columns if delivery_only else self._columns
        saved: list[Report] = []
        params: list[dict[str, Any]] = []
        entries: list[tuple[str, HistoryEntry]] = []
        for report, bump, extra in items:
            entries += [(report.id, e) for e in report.history]
            for_update: dict[str, Any] = {"history": []}
            if bump:
                for_update["version"] = report.version + 1
            stored = report.model_copy(update=for_update)
            saved.append(stored)
            params.append({"report_id": stored.id, "updated_at": now, **columns(stored), **extra})
        execute_many(conn, _UPDATE_REPORT, params)
        _insert_history(conn, entries)
        for (report, _, _), stored in zip(items, saved, strict=True):
            record_decisions_sync(conn, stored, report.history)
        return saved, self._run_hooks(conn, saved)

    async def get_report(self, report_id: str, *, with_history: bool = True) -> Report | None:
        async with self.read() as conn:
            report = await self.load_report(conn, report_id)
            if report is None:
                return None
            await self._show_notifications(conn, [report])
            if not with_history:
                return report
            report.history = await self.load_history(conn, report.id)
        return report

    @staticmethod
    async def load_history(conn: AsyncConnection, report_id: str) -> list[HistoryEntry]:
        rows = await conn.execute(
            select(report_history)
            .where(report_history.c.report_id == report_id)
            .order_by(report_history.c.id)
        )
        return [
            HistoryEntry(
                at=r.at,
                status=r.status,
                by=r.by,
                note=r.note,
                changes=json.loads(r.changes) if r.changes else None,
            )
            for r in rows
        ]

    @staticmethod
    async def _show_notifications(conn: AsyncConnection, items: Sequence[Report]) -> None:
        """`report.notifications` as the outbound table has them (one entry per kind): the
        table is the truth, so sending never rewrites a report nor bumps its version."""
        if not items:
            return
        rows = await conn.execute(
            select(
                outbound.c.report_id,
                outbound.c.kind,
                outbound.c.channel,
                outbound.c.state,
                outbound.c.sent_at,
                outbound.c.last_error,
            )
            .where(outbound.c.report_id.in_([r.id for r in items]))
            .order_by(outbound.c.created_at)
        )
        found: dict[str, list[Notification]] = {}
        for row in rows:
            found.setdefault(row.report_id, []).append(
                Notification.model_validate(
                    {
                        "channel": row.channel,
                        "kind": row.kind,
                        "state": row.state,
                        "sent_at": row.sent_at,
                        "error": row.last_error,
                    }
                )
            )
        for report in items:
            if report.id in found:
                report.notifications = found[report.id]

    async def update_report(
        self,
        report_id: str,
        change: Callable[[Report], Report | None],
        *,
        expected_version: int | None = None,
    ) -> Report | None:
        """Read-modify-write one report in a transaction. `change` returns the new report
        (with only its NEW history entries in `history`) or None to leave it as it is."""
        async with self.write() as conn:
            current = await self.load_report(conn, report_id, for_update=True)
            if current is None:
                return None
            if expected_version is not None and current.version != expected_version:
                raise StaleVersion(current.version)
            changed = change(current)
            if changed is None:
                return current
            if not await self.save_report(conn, changed, current.version):
                raise StaleVersion(current.version)
        return await self.get_report(current.id)

    async def report_id_by_ticket(self, ticket: str) -> str | None:
        async with self.read() as conn:
            row = (
                await conn.execute(select(reports.c.id).where(reports.c.ticket == ticket))
            ).first()
        return row[0] if row else None

    async def list_reports(
        self,
        scope: str,
        *,
        status: Sequence[str] | None = None,
        channel: str | None = None,
        owner: str | None = None,
        geo: bool | None = None,
        kelurahan: str | None = None,
        q: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        oldest_first: bool = False,
        attention: bool | None = None,
        or_attention: bool = False,
    ) -> tuple[list[Report], str | None]:
        """`or_attention`: also the reports flagged for their owner's attention, whatever
        their status (the enrichment queue shows both). That is a second query merged in
        order: an OR across the two would keep the database from using either index."""
        conds = [scope_condition(scope)]
        branches: list[Any] = [None]
        if status:
            by_status = reports.c.status.in_(list(status))
            if or_attention:
                flagged_elsewhere = and_(FLAGGED, reports.c.status.not_in(list(status)))
                branches = [by_status, flagged_elsewhere]
            else:
                conds.append(by_status)
        if attention is not None:
            conds.append(FLAGGED if attention else reports.c.attention.is_(None))
        if channel:
            conds.append(reports.c.channel == channel)
        if owner:
            conds.append(reports.c.owner == owner)
        if geo is not None:
            conds.append(reports.c.geo_tagged == geo)
        if kelurahan:
            conds.append(reports.c.kelurahan_code == kelurahan)
        if q:
            escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(reports.c.search_text.like(f"%{escaped}%", escape="\\"))
        if since:
            conds.append(reports.c.received_at >= since)
        order_cols = (reports.c.received_at, reports.c.id)
        if cursor:
            at, last_id = decode_cursor(cursor)
            if oldest_first:
                conds.append(tuple_(*order_cols) > tuple_(at, last_id))
            else:
                conds.append(tuple_(*order_cols) < tuple_(at, last_id))
        order = [c.asc() if oldest_first else c.desc() for c in order_cols]
        rows: list[Any] = []
        async with self.read() as conn:
            for n, branch in enumerate(branches):
                where = and_(*conds, branch) if branch is not None else and_(*conds)
                stmt = select(reports.c.doc, reports.c.received_at, reports.c.id).where(where)
                if n == 0:
                    stmt = stmt.order_by(*order).limit(limit + 1)
                else:
                    # Flagged reports are few: read them through the attention index (an
                    # ORDER BY would make the planner walk received_at over every row).
                    stmt = stmt.limit(MAX_FLAGGED)
                rows += (await conn.execute(stmt)).all()
            if len(branches) > 1:
                rows.sort(key=lambda r: (r.received_at, r.id), reverse=not oldest_first)
                rows = rows[: limit + 1]
            items = [Report.model_validate_json(r.doc) for r in rows[:limit]]
            await self._show_notifications(conn, items)
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last.received_at, last.id)
        return items, next_cursor

    async def stats(self, scope: str) -> dict[str, Any]:
        where = scope_condition(scope)
        out: dict[str, Any] = {}
        async with self.read() as conn:
            for key, col in (
                ("by_channel", reports.c.channel),
                ("by_status", reports.c.status),
                ("by_owner", reports.c.owner),
            ):
                rows = await conn.execute(select(col, func.count()).where(where).group_by(col))
                out[key] = {name: n for name, n in rows}
            rows = await conn.execute(
                select(reports.c.owner, func.min(reports.c.received_at))
                .where(where, reports.c.status == "pending_enrichment")
                .group_by(reports.c.owner)
            )
            out["oldest_waiting"] = {
                owner: (at.replace(tzinfo=UTC) if at.tzinfo is None else at).isoformat()
                for owner, at in rows
                if at is not None
            }
            rows = await conn.execute(
                select(reports.c.geo_tagged, func.count())
                .where(where)
                .group_by(reports.c.geo_tagged)
            )
            out["by_geo"] = {("geo" if g else "non_geo"): n for g, n in rows}
        return out


def group_key_of(report: Report, message_group_key: str | None = None) -> str | None:
    """The key under which later messages find this report: DM conversations ("dm:…") and
    albums ("album:…") gather into the report they started (gateway/conversations.py).
    SMS parts ("concat:…") are gathered before the report exists and need none."""
    if message_group_key and message_group_key.startswith(("dm:", "album:")):
        return message_group_key[:255]
    return None


class StaleVersion(Exception):
    def __init__(self, current: int):
        super().__init__(f"report is at version {current}")
        self.current = current


def encode_cursor(at: datetime, report_id: str) -> str:
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{report_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, report_id = raw.split("|", 1)
        return datetime.fromisoformat(at), report_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("bad cursor") from exc
