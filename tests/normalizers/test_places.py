"""Location suggestions from free text (normalizers.places)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.geo import AreaIndex, default_index
from normalizers.places import LocationSuggestion, suggest_locations


@pytest.fixture(scope="module")
def index() -> AreaIndex:
    return default_index()


def top(text: str, index: AreaIndex) -> LocationSuggestion | None:
    found = suggest_locations(text, index)
    return found[0] if found else None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Jalan rusak di Kel. Jatinegara, Kec. Cakung", "31.75.06.1001"),
        ("banjir sepaha di RT 03/RW 05 kel kampung melayu jaktim", "31.75.03.1001"),
        ("kelurahan setia budi, parkir liar", "31.74.02.1001"),
        ("kel setiabudi, parkir liar", "31.74.02.1001"),
        ("klurahan sunter jaya, banjir", "31.72.02.1002"),
        ("kel. kampung tengah kramat jati, banjir", "31.75.04.1002"),
    ],
)
def test_a_named_kelurahan_is_a_confident_top_suggestion(index, text, code):
    suggestion = top(text, index)
    assert suggestion is not None
    assert suggestion.kelurahan.code == code
    assert suggestion.confidence >= 0.8


def test_a_misspelt_kelurahan_is_found_but_needs_corroboration_to_be_confident(index):
    alone = top("kel. kebon jruk, jalan rusak", index)
    assert alone.kelurahan.code == "31.73.05.1001"
    assert alone.confidence < 0.8
    assert top("kel. kebon jruk jakbar, jalan rusak", index).confidence >= 0.8


def test_evidence_is_the_span_of_the_citizens_own_words(index):
    suggestion = top("Banjir di Kel. Jatinegara, Kec. Cakung", index)
    assert "Kel. Jatinegara" in suggestion.evidence
    assert "Kec. Cakung" in suggestion.evidence


def test_a_street_with_its_kecamatan_is_confident(index):
    suggestion = top("pju mati di jl kemang raya dekat kec mampang prapatan", index)
    assert suggestion.kelurahan.name == "Bangka"
    assert suggestion.confidence >= 0.8
    assert suggestion.lat is not None and suggestion.lon is not None


def test_a_street_alone_is_a_suggestion_below_the_confident_line(index):
    suggestion = top("pju mati jl kemang raya", index)
    assert suggestion.kelurahan.name == "Bangka"
    assert suggestion.confidence < 0.8


def test_an_ambiguous_street_name_is_never_confident(index):
    for suggestion in suggest_locations("parkir liar di jl. melati", index):
        assert suggestion.confidence < 0.5


def test_rw_gives_the_rw_point_inside_the_kelurahan(index):
    suggestion = top("RW 04 Kel. Sunter Agung banjir 50cm", index)
    assert suggestion.kelurahan.code == "31.72.02.1006"
    assert index.locate(suggestion.lat, suggestion.lon).kelurahan.code == "31.72.02.1006"


def test_a_postal_code_alone_is_a_medium_suggestion(index):
    suggestion = top("jalan rusak di kodepos 12730", index)
    assert suggestion.kelurahan.name == "Bangka"
    assert 0.3 < suggestion.confidence < 0.8


def test_a_landmark_places_the_point(index):
    suggestion = top("lampu jalan mati di depan monas", index)
    assert suggestion.kelurahan.code == "31.71.01.1001"
    assert suggestion.lat == pytest.approx(-6.1754)


def test_a_kecamatan_that_contradicts_the_kelurahan_lowers_confidence(index):
    agreeing = top("kel. kebon baru kec. tebet", index)
    contradicting = top("kel. kebon baru kec. cengkareng", index)
    assert contradicting.confidence < agreeing.confidence


@pytest.mark.parametrize(
    "text",
    [
        "tolong pak jalan rusak parah",
        "halo min",
        "rt 02 rw 03 sampah numpuk",
        "kec. cakung jaktim, jalan rusak",
        "Depok banjir, tolong Pemprov DKI juga bantu",
        "",
    ],
)
def test_no_confident_suggestion_without_a_place(index, text):
    assert all(s.confidence < 0.8 for s in suggest_locations(text, index))


def test_limit_is_respected(index):
    assert len(suggest_locations("jl melati jl mawar jl kenanga", index, limit=2)) <= 2
    assert suggest_locations("kel. menteng", index, limit=0) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_and_confidence_stays_in_0_1(text):
    for suggestion in suggest_locations(text, default_index()):
        assert 0.0 <= suggestion.confidence <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "kel.",
                "kec.",
                "jl.",
                "rw",
                "05",
                "12730",
                "menteng",
                "jaktim",
                "kebon",
                "jeruk",
                "jatinegara",
                "raya",
                "/",
                ",",
                "RT 03/RW 05",
                "kelurahan",
                "monas",
                "depok",
            ]
        ),
        max_size=12,
    )
)
def test_never_raises_on_place_like_word_salad(words):
    for suggestion in suggest_locations(" ".join(words), default_index()):
        assert 0.0 <= suggestion.confidence <= 1.0
