"""Read-only queries of the admin's queue page: the other open reports of each card's
reporter, in the reader's scope (by the indexed `reporter_key`), and the reports that
cards name by id (the originals of likely duplicates, by primary key)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from gateway.store.engine import StoreEngine
from gateway.store.schema import reports
from gateway.store.scope import scope_condition

# A report in one of these is no longer anyone's work.
CLOSED = ("done", "rejected")
MAX_PER_REPORTER = 20  # a flood of one sender shows a count, not a thousand links


@dataclass(frozen=True)
class OtherReport:
    id: str
    ticket: str
    status: str


async def other_open_reports(
    store: StoreEngine, scope: str, report_ids: Sequence[str]
) -> dict[str, list[OtherReport]]:
    """For each of `report_ids`, the other open reports (oldest first) of the same reporter
    that `scope` may see; reports without a known reporter get none. Below the province a
    confidential report is never linked to its reporter's others, either way: the link
    would tell who sent it."""
    province = scope == "province"
    if not report_ids:
        return {}
    async with store.read() as conn:
        keyed = (
            await conn.execute(
                select(reports.c.id, reports.c.reporter_key).where(
                    reports.c.id.in_(list(report_ids)), reports.c.reporter_key.is_not(None)
                )
            )
        ).all()
        keys = {key for _, key in keyed}
        if not keys:
            return {}
        rows = (
            await conn.execute(
                select(
                    reports.c.id,
                    reports.c.ticket,
                    reports.c.status,
                    reports.c.reporter_key,
                    reports.c.doc,
                )
                .where(
                    reports.c.reporter_key.in_(sorted(keys)),
                    reports.c.status.not_in(CLOSED),
                    scope_condition(scope),
                )
                .order_by(reports.c.received_at, reports.c.id)
                .limit(MAX_PER_REPORTER * len(keys) + len(report_ids))
            )
        ).all()
    by_key: dict[str, list[OtherReport]] = {}
    hidden: set[str] = set()
    for row in rows:
        if not province and json.loads(row.doc).get("confidential"):
            hidden.add(row.id)
            continue
        by_key.setdefault(row.reporter_key, []).append(OtherReport(row.id, row.ticket, row.status))
    return {
        report_id: [o for o in by_key.get(key, []) if o.id != report_id][:MAX_PER_REPORTER]
        for report_id, key in keyed
        if report_id not in hidden
    }


async def reports_by_id(
    store: StoreEngine, scope: str, report_ids: Sequence[str]
) -> dict[str, OtherReport]:
    """The ticket and status of each of `report_ids` that `scope` may see, in one query by
    primary key; the others are left out."""
    wanted = sorted(set(report_ids))
    if not wanted:
        return {}
    async with store.read() as conn:
        rows = (
            await conn.execute(
                select(reports.c.id, reports.c.ticket, reports.c.status).where(
                    reports.c.id.in_(wanted), scope_condition(scope)
                )
            )
        ).all()
    return {row.id: OtherReport(row.id, row.ticket, row.status) for row in rows}
