"""Status back from the CRM: a poller follows open service requests.

Every `crm.status_poll_interval_s`, on one replica at a time (a scheduler lease), reports
that are `posted` or `in_progress` are looked up in batches with
`GET requests.json?service_request_id=a,b,c`. A closed request makes the report `done`;
new `status_notes` or a new `updated_datetime` make it `in_progress`. Each change is a
history entry by "crm" carrying the CRM's status, notes and updated_datetime.

The first answer about a request only sets the baseline `updated_datetime` (the CRM's
creation time is not a change); notes or a close in that first answer still count.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from crm_client import RemoteStatus
from gateway.base.polling import Poller
from gateway.base.runtime import Runtime
from gateway.crm.destinations import DESTINATIONS, Open311, open311_client
from gateway.store.schema import reports
from normalizers.report import HistoryEntry, Report

log = logging.getLogger("kanal.crm.status")

FOLLOWED = ("posted", "in_progress")
PAGE = 500  # reports read per round trip to the store; the client batches 50 ids per GET


def apply_status(report: Report, remote: RemoteStatus, now: datetime) -> Report | None:
    """The report after the CRM's answer, with a new history entry; None when nothing changed."""
    if report.status not in FOLLOWED:
        return None
    crm = report.crm
    closed = remote.status == "closed"
    new_notes = remote.status_notes is not None and remote.status_notes != crm.status_notes
    baseline = crm.updated_at is None
    new_update = (
        remote.updated_datetime is not None
        and not baseline
        and remote.updated_datetime != crm.updated_at
    )
    changed = report.model_copy(deep=True, update={"history": []})
    changed.crm.status = remote.status
    changed.crm.status_notes = (
        remote.status_notes if remote.status_notes is not None else crm.status_notes
    )
    if remote.updated_datetime is not None:
        changed.crm.updated_at = remote.updated_datetime
    if closed:
        changed.status = "done"
    elif new_notes or new_update:
        changed.status = "in_progress"
    if changed.status == report.status and not new_notes and not new_update:
        if changed.crm == crm:
            return None
        return changed  # the baseline updated_datetime, or the CRM's status word: no entry
    changed.history.append(
        HistoryEntry(
            at=now,
            status=changed.status,
            by="crm",
            note=remote.status_notes,
            changes={
                "crm_status": remote.status,
                "status_notes": remote.status_notes,
                "updated_datetime": (
                    remote.updated_datetime.isoformat() if remote.updated_datetime else None
                ),
            },
        )
    )
    return changed


async def poll_statuses(runtime: Runtime) -> None:
    store = runtime.store
    client = open311_client(runtime)
    changed = 0
    try:
        last_id = ""
        while True:
            async with store.read() as conn:
                rows = (
                    await conn.execute(
                        select(reports.c.id, reports.c.crm_request_id)
                        .where(
                            reports.c.status.in_(FOLLOWED),
                            reports.c.crm_request_id.is_not(None),
                            reports.c.id > last_id,
                        )
                        .order_by(reports.c.id)
                        .limit(PAGE)
                    )
                ).all()
            if not rows:
                break
            last_id = rows[-1].id
            by_request = {
                s.service_request_id: s
                for s in await client.fetch_statuses([r.crm_request_id for r in rows])
            }
            for report_id, request_id in rows:
                remote = by_request.get(request_id)
                if remote is None:
                    continue
                moved: list[str] = []

                def change(
                    report: Report, remote: RemoteStatus = remote, moved: list[str] = moved
                ) -> Report | None:
                    updated = apply_status(report, remote, store.clock())
                    if updated is not None and updated.status != report.status:
                        moved.append(updated.status)
                    return updated

                await store.update_report(report_id, change)
                changed += len(moved)
    finally:
        await client.close()
    if changed:
        log.info("crm status: %d report(s) changed status", changed)


CRM_STATUS_POLLER = Poller(
    name="crm_status",
    enabled=lambda rt: DESTINATIONS[rt.settings.crm.mode] is Open311,
    interval_s=lambda rt: rt.settings.crm.status_poll_interval_s,
    run=poll_statuses,
)
