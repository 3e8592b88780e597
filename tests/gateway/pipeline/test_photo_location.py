"""The rule for a photo fetched after its report was made: applied to a report untouched in
its queue, offered as a suggestion to one a person works on, ignored past the queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gateway.pipeline.photo_location import located_by_photo
from normalizers.canonical import photo_placement
from normalizers.geo import default_index
from normalizers.report import AreaRef, HistoryEntry, Lease, Location
from tests.gateway.web.api.reports import T0, make_report
from tests.normalizers_photo.test_photo import gps_block, photo

AREAS = default_index()
MONAS = (-6.1754, 106.8272)  # kelurahan Gambir
GAMBIR = "31.71.01.1001"
IN_GAMBIR = photo_placement([photo(gps_block(*MONAS))], AREAS)
IN_BANDUNG = photo_placement([photo(gps_block(-6.9175, 107.6191))], AREAS)
NOW = T0 + timedelta(hours=1)
MENTENG = AreaRef(code="31.71.06.1001", name="Menteng")
PERSON = HistoryEntry(at=T0, status="pending_enrichment", by="ana", note="claimed")
MACHINE = HistoryEntry(at=T0, status="attachment", by="media", note="attachment 0 stored")

CASES: list[tuple[str, dict[str, Any], list[HistoryEntry], str]] = [
    ("untouched in the queue", {}, [MACHINE], "applied"),
    (
        "claimed now",
        {"lease": Lease(holder="ana", until=NOW + timedelta(minutes=5))},
        [],
        "offered",
    ),
    (
        "claimed once, lease lapsed",
        {"lease": Lease(holder="ana", until=NOW - timedelta(minutes=5))},
        [PERSON],
        "offered",
    ),
    ("claimed and released", {}, [PERSON], "offered"),
    (
        "placed by an admin",
        {"location": Location(lat=-6.19, lon=106.83, source="admin", kelurahan=MENTENG)},
        [],
        "offered",
    ),
    (
        "geo-tagged at intake",
        {
            "geo_tagged": True,
            "non_geo_reason": None,
            "location": Location(lat=-6.19, lon=106.83, source="device", kelurahan=MENTENG),
        },
        [],
        "unchanged",
    ),
    ("submitted", {"status": "ready"}, [PERSON], "unchanged"),
    ("posted to the CRM", {"status": "posted"}, [], "unchanged"),
    ("rejected", {"status": "rejected"}, [], "unchanged"),
]


@pytest.mark.parametrize(
    ("fields", "history", "outcome"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_fetched_photo_in_jakarta_places_only_a_report_nobody_works_on(
    fields: dict[str, Any], history: list[HistoryEntry], outcome: str
) -> None:
    assert IN_GAMBIR is not None
    report = make_report("province", **fields)
    report = report.model_copy(update={"history": []})
    changed = located_by_photo(report, IN_GAMBIR, attachment=0, history=history, now=NOW)
    if outcome == "unchanged":
        assert changed is None
        return
    assert changed is not None
    [entry] = changed.history
    assert entry.by == "media" and "EXIF GPS of attachment 0" in (entry.note or "")
    if outcome == "applied":
        assert changed.geo_tagged and changed.status == "ready" and entry.status == "ready"
        assert changed.location.source == "exif"
        assert changed.location.kelurahan is not None
        assert changed.location.kelurahan.code == GAMBIR
        assert changed.owner == f"kelurahan:{GAMBIR}"
    else:
        assert (changed.status, changed.owner, changed.geo_tagged) == (
            report.status,
            report.owner,
            report.geo_tagged,
        )
        assert changed.location == report.location and changed.lease == report.lease
        assert changed.suggestions.locations[0].kelurahan.code == GAMBIR


@pytest.mark.parametrize("history", [[], [PERSON]], ids=["untouched", "touched"])
def test_a_fetched_photo_taken_outside_jakarta_changes_nothing(
    history: list[HistoryEntry],
) -> None:
    assert IN_BANDUNG is not None and not IN_BANDUNG.geo_tagged
    report = make_report("province")
    assert located_by_photo(report, IN_BANDUNG, attachment=0, history=history, now=NOW) is None
