"""The pure enrichment rules of gateway/enrich.py: no store, no HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.pipeline import enrich
from gateway.pipeline.enrich import EnrichError, EnrichmentPatch, RejectBody
from normalizers.category import default_taxonomy
from normalizers.geo import default_index
from normalizers.report import HistoryEntry
from tests.gateway.web.api.reports import KOTA_PUSAT, MENTENG, T0, make_report

AREAS = default_index()
TAXONOMY = default_taxonomy()
OFFICES = ("balai_kota", "biro_pemerintahan", "inspektorat")


def patched(report, body, by="ana", scope=MENTENG, now=T0):
    return enrich.apply_patch(
        report,
        EnrichmentPatch.model_validate(body),
        by=by,
        scope=scope,
        now=now,
        areas=AREAS,
        taxonomy=TAXONOMY,
        offices=OFFICES,
    )


def test_a_fresh_non_geo_report_misses_location_and_category():
    assert enrich.missing_for_submit(make_report(MENTENG)) == ["location", "category"]


def test_an_address_alone_is_not_a_location():
    report = patched(make_report(MENTENG), {"address": "Jl. Teuku Umar"})
    assert enrich.missing_for_submit(report) == ["location", "category"]


def test_a_kelurahan_code_and_a_category_complete_it():
    report = patched(make_report(MENTENG), {"kelurahan_code": "31.71.06.1001", "category": "jalan"})
    assert enrich.missing_for_submit(report) == []
    assert report.location.precision == "kelurahan" and report.location.source == "admin"


def test_the_lease_is_15_minutes_and_renewed_by_every_change():
    report = enrich.claim(make_report(MENTENG), "ana", T0)
    assert report.lease is not None and report.lease.until == T0 + timedelta(minutes=15)
    later = patched(report, {"category": "jalan"}, now=T0 + timedelta(minutes=10))
    assert later.lease is not None and later.lease.until == T0 + timedelta(minutes=25)


def test_someone_else_s_live_lease_blocks_every_write_and_a_lapsed_one_does_not():
    report = enrich.claim(make_report(MENTENG), "ana", T0)
    for attempt in (
        lambda: enrich.claim(report, "budi", T0),
        lambda: patched(report, {"category": "jalan"}, by="budi"),
        lambda: enrich.submit(report, by="budi", now=T0, keep_owner=False),
        lambda: enrich.reject(report, RejectBody(reason="spam"), by="budi", now=T0),
        lambda: enrich.release(report, "budi", T0),
    ):
        with pytest.raises(EnrichError) as caught:
            attempt()
        assert caught.value.status == 409 and caught.value.extra["holder"] == "ana"
    assert enrich.claim(report, "budi", T0 + timedelta(minutes=16)).lease.holder == "budi"


def test_release_without_a_lease_changes_nothing():
    assert enrich.release(make_report(MENTENG), "ana", T0) is None


def test_every_change_is_one_history_entry_with_who_when_and_what():
    report = patched(make_report(MENTENG), {"category": "jalan", "description": "Lubang"})
    [entry] = report.history
    assert (entry.by, entry.at, entry.note) == ("ana", T0, "enriched")
    assert entry.changes == {"category": "jalan", "description": "Lubang"}


def test_submit_moves_the_owner_to_the_location_s_kelurahan_unless_a_person_chose_one():
    report = patched(
        make_report(KOTA_PUSAT), {"kelurahan_code": "31.71.06.1002", "category": "jalan"}
    )
    sent = enrich.submit(report, by="ana", now=T0, keep_owner=False)
    assert (sent.status, sent.owner, sent.geo_tagged) == ("ready", "kelurahan:31.71.06.1002", False)
    kept = enrich.submit(report, by="ana", now=T0, keep_owner=True)
    assert kept.owner == KOTA_PUSAT


def test_owner_set_by_admin_reads_the_history():
    system = HistoryEntry(at=T0, status="pending_enrichment", by="system", changes={"owner": "x"})
    person = HistoryEntry(at=T0, status="pending_enrichment", by="ana", changes={"owner": "x"})
    assert not enrich.owner_set_by_admin([system])
    assert enrich.owner_set_by_admin([system, person])


@pytest.mark.parametrize(
    ("owner", "valid"),
    [
        ("province", True),
        ("kota:31.71", True),
        ("kota:31.79", False),
        ("kecamatan:31.71.06", True),
        ("kelurahan:31.71.06.1001", True),
        ("kelurahan:31.71.06.9999", False),
        ("office:inspektorat", True),
        ("office:nowhere", False),
        ("dinas:bina_marga", False),
    ],
)
def test_valid_owners(owner, valid):
    assert enrich.valid_owner(owner, AREAS, OFFICES) is valid


def test_only_pending_reports_are_enriched_and_only_rejected_ones_reopened():
    ready = make_report(MENTENG, status="ready")
    with pytest.raises(EnrichError) as caught:
        patched(ready, {"category": "jalan"})
    assert caught.value.code == "wrong_status"
    with pytest.raises(EnrichError):
        enrich.reopen(ready, by="ana", now=T0)
    rejected = enrich.reject(ready, RejectBody(reason="spam"), by="ana", now=T0)
    assert enrich.reopen(rejected, by="ana", now=T0).status == "pending_enrichment"


def test_a_report_cannot_be_its_own_duplicate():
    report = make_report(MENTENG)
    body = RejectBody(reason="duplicate", duplicate_of=report.id)
    with pytest.raises(EnrichError):
        enrich.reject(report, body, by="ana", now=T0)
