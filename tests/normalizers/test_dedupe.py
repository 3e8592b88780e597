"""Possible-duplicate suggestions (normalizers.dedupe): a pure decision, never a merge."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from normalizers.dedupe import (
    DedupeSubject,
    distance_m,
    duplicate_suggestions,
    text_fingerprint,
    text_similarity,
)

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
REPORT = DedupeSubject(
    id="01NEW",
    ticket="KNL-NEW",
    reporter_key="+6281234567890",
    text="Sampah numpuk di depan gang, sudah 3 hari blm diangkut",
    category_code="sampah",
    lat=-6.2000,
    lon=106.8000,
    received_at=NOW,
    status="received",
)


def other(**changes) -> DedupeSubject:
    base = replace(
        REPORT,
        id="01OLD",
        ticket="KNL-OLD",
        received_at=NOW - timedelta(days=1),
        status="pending_enrichment",
    )
    return replace(base, **changes)


def test_same_reporter_same_text_within_7_days():
    found = duplicate_suggestions(REPORT, [other()], NOW)
    assert [s.as_dict() for s in found] == [
        {"id": "01OLD", "ticket": "KNL-OLD", "why": "same reporter, same text"}
    ]


def test_same_reporter_near_identical_text_with_slang_and_punctuation_differences():
    near = other(text="sampah numpuk di depan gang sudah 3 hari belum diangkut!!")
    found = duplicate_suggestions(REPORT, [near], NOW)
    assert len(found) == 1 and found[0].why.startswith("same reporter")


def test_same_reporter_different_complaint_is_not_a_duplicate():
    different = other(text="lampu jalan mati di ujung gang", category_code="jaringan_listrik")
    assert duplicate_suggestions(REPORT, [different], NOW) == []


def test_same_reporter_same_text_after_7_days_is_not_suggested_by_the_reporter_rule():
    old = other(received_at=NOW - timedelta(days=8), lat=None, lon=None)
    assert duplicate_suggestions(REPORT, [old], NOW) == []


def test_same_category_nearby_and_recent_from_someone_else():
    neighbour = other(
        reporter_key="+6289999999999",
        text="banyak sampah di gang ini",
        lat=-6.2009,
        lon=106.8000,
        received_at=NOW - timedelta(hours=10),
    )
    found = duplicate_suggestions(REPORT, [neighbour], NOW)
    assert len(found) == 1
    assert found[0].why == "same category within 100 m and 10 h"


@pytest.mark.parametrize(
    "changes",
    [
        {"lat": -6.2030},  # ~330 m away
        {"received_at": NOW - timedelta(hours=80)},
        {"category_code": "jalan"},
        {"status": "done"},
        {"status": "rejected"},
        {"lat": None, "lon": None},
    ],
)
def test_nearby_rule_needs_same_category_open_close_and_recent(changes):
    candidate = other(reporter_key="+6289999999999", text="banyak sampah di gang ini", **changes)
    assert duplicate_suggestions(REPORT, [candidate], NOW) == []


def test_unknown_category_never_matches_by_place():
    report = replace(REPORT, category_code="unknown")
    candidate = other(reporter_key=None, text="lain", category_code="unknown")
    assert duplicate_suggestions(report, [candidate], NOW) == []


def test_the_report_itself_is_never_its_own_duplicate():
    assert duplicate_suggestions(REPORT, [REPORT], NOW) == []


def test_reporter_matches_rank_before_place_matches_and_closer_first():
    far = other(id="A", reporter_key="x", text="lain", lat=-6.2015)
    near = other(id="B", reporter_key="y", text="lain", lat=-6.2003)
    same = other(id="C")
    assert [s.id for s in duplicate_suggestions(REPORT, [far, near, same], NOW)] == ["C", "B", "A"]


def test_fingerprint_ignores_case_order_punctuation_and_slang():
    assert text_fingerprint("Sampah numpuk, blm diangkut!") == text_fingerprint(
        "belum diangkut sampah NUMPUK"
    )
    assert text_fingerprint("sampah") != text_fingerprint("banjir")


def test_similarity_and_distance_helpers():
    assert text_similarity("a b c d", "a b c d") == 1.0
    assert text_similarity("", "") == 1.0
    assert distance_m(-6.2, 106.8, -6.2, 106.8) == 0.0
    assert distance_m(-6.2, 106.8, -6.2009, 106.8) == pytest.approx(100, abs=1)
