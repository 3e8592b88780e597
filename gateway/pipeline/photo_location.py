"""Where a photo fetched after the report was made puts it.

Pure. A report still untouched in its enrichment queue is geo-tagged and routed on as at
intake; one a person works on, or that is placed or past the queue, is at most offered
the photo's kelurahan as a location suggestion: a machine never overrides a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.pipeline.enrich import live_lease
from normalizers.canonical import Placement
from normalizers.report import HistoryEntry, Report

# History authors that are kanal itself; any other author is a person.
MACHINE_ACTORS = frozenset({"system", "media", "crm", "notify"})


def untouched_in_queue(report: Report, history: Sequence[HistoryEntry], now: datetime) -> bool:
    """Waiting for enrichment, not geo-tagged, and no person has claimed, placed or
    changed it (`history` is what the store holds for the report)."""
    return (
        report.status == "pending_enrichment"
        and not report.geo_tagged
        and live_lease(report, now) is None
        and report.location.source != "admin"
        and all(entry.by in MACHINE_ACTORS for entry in history)
    )


def located_by_photo(
    report: Report,
    placement: Placement,
    *,
    attachment: int,
    history: Sequence[HistoryEntry],
    now: datetime,
) -> Report | None:
    """`report` with the photo's position applied or suggested, one history entry added
    to those it carries; None when the photo changes nothing."""
    evidence = f"EXIF GPS of attachment {attachment}"
    if placement.geo_tagged and untouched_in_queue(report, history, now):
        owner = placement.owner
        location = placement.location.model_copy(update={"address": report.location.address})
        kelurahan = location.kelurahan.code if location.kelurahan else None
        entry = HistoryEntry(
            at=now,
            status="ready",
            by="media",
            note=f"owner {owner} (location from the {evidence})",
            changes={
                "location": {"lat": location.lat, "lon": location.lon, "kelurahan": kelurahan},
                "owner": owner,
                "status": "ready",
            },
        )
        return report.model_copy(
            update={
                "location": location,
                "geo_tagged": True,
                "non_geo_reason": None,
                "owner": owner,
                "status": "ready",
                "suggestions": report.suggestions.model_copy(update={"locations": []}),
                "history": [*report.history, entry],
            }
        )
    if report.status != "pending_enrichment" or report.geo_tagged:
        return None
    suggestion = placement.as_suggestion(evidence)
    if suggestion is None:
        return None
    entry = HistoryEntry(
        at=now,
        status=report.status,
        by="media",
        note=f"location suggested from the {evidence}",
        changes={"suggestion": suggestion.kelurahan.code},
    )
    locations = [suggestion, *report.suggestions.locations]
    return report.model_copy(
        update={
            "suggestions": report.suggestions.model_copy(update={"locations": locations}),
            "history": [*report.history, entry],
        }
    )
