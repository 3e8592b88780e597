"""Reports for admin API tests, written straight into a store (no webhook round trip)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.store import Store
from gateway.store.ids import new_id, new_ticket
from normalizers.report import HistoryEntry, Report, Reporter

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)

# Owners on every level, in two kota, so that every scope has something it must not see.
MENTENG = "kelurahan:31.71.06.1001"  # Jakarta Pusat / kec. Menteng
PEGANGSAAN = "kelurahan:31.71.06.1002"  # Jakarta Pusat / kec. Menteng
KEC_MENTENG = "kecamatan:31.71.06"
KOTA_PUSAT = "kota:31.71"
KOTA_SELATAN = "kota:31.74"
OFFICE = "office:balai_kota"


def make_report(owner: str, *, minutes: int = 0, **fields: Any) -> Report:
    """A non-geo SMS waiting in `owner`'s queue (fields override anything)."""
    report_id = new_id()
    at = T0 + timedelta(minutes=minutes)
    values: dict[str, Any] = {
        "id": report_id,
        "ticket": new_ticket(),
        "channel": "sms",
        "connector": "sms_generic",
        "intake": "webhook",
        "external_id": f"ext-{report_id}",
        "received_at": at,
        "reporter": Reporter(phone="+6281234567890", name="Budi", channel_user_id="+6281234567890"),
        "text": f"Jalan berlubang di depan rumah ({owner})",
        "owner": owner,
        "status": "pending_enrichment",
        "non_geo_reason": "no_location",
        "history": [
            HistoryEntry(at=at, status="received", by="system"),
            HistoryEntry(at=at, status="pending_enrichment", by="system", note="no_location"),
        ],
    }
    values.update(fields)
    return Report(**values)


async def put_reports(store: Store, *reports: Report) -> None:
    async with store.write() as conn:
        for report in reports:
            await store.insert_report(conn, report, report.id, None)
