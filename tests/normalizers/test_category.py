"""Taxonomy completeness, the keyword classifier and the noise score (normalizers.category)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.category import (
    PhraseMatcher,
    Taxonomy,
    classify,
    default_taxonomy,
    noise_score,
    snake_case,
)
from normalizers.text import normalize_for_matching

OFFICIAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "taxonomy"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return default_taxonomy()


def test_every_official_category_is_present_once(taxonomy):
    names = {c.name for c in taxonomy.categories}
    assert len(taxonomy.categories) == 116
    assert len(names) == 116
    official = OFFICIAL / "jaki_crm_categories.json"
    if official.exists():
        assert names == set(json.loads(official.read_text("utf-8"))["jaki_crm_categories"])


def test_codes_are_the_snake_case_of_the_official_name(taxonomy):
    for category in taxonomy.categories:
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", category.code), category.code
        assert category.code == snake_case(category.name)
    assert taxonomy.get("jalan").name == "Jalan"
    assert taxonomy.get("parkir_liar").name == "Parkir Liar"
    assert taxonomy.get("saluran_air_kali_sungai").name == "Saluran Air, Kali/Sungai"


def test_codes_and_service_codes_are_unique_and_every_category_has_an_agency(taxonomy):
    codes = [c.code for c in taxonomy.categories]
    service_codes = [c.service_code for c in taxonomy.categories]
    assert len(set(codes)) == len(codes)
    assert len(set(service_codes)) == len(service_codes)
    assert all(c.agency and c.service_code for c in taxonomy.categories)
    assert all(c.keywords for c in taxonomy.categories)
    assert taxonomy.by_service_code("JLN").code == "jalan"
    assert taxonomy.by_service_code("nope") is None


@pytest.mark.parametrize(
    ("code", "agency"),
    [
        ("jalan", "Dinas Bina Marga"),
        ("sampah", "Dinas Lingkungan Hidup"),
        ("banjir", "Dinas Sumber Daya Air"),
        ("saluran_air_kali_sungai", "Dinas Sumber Daya Air"),
        ("pohon", "Dinas Pertamanan dan Hutan Kota"),
        ("parkir_liar", "Dinas Perhubungan"),
        ("jaringan_listrik", "Dinas Bina Marga"),
        ("gangguan_ketenteraman_dan_ketertiban", "Satuan Polisi Pamong Praja"),
    ],
)
def test_common_categories_go_to_the_right_dinas(taxonomy, code, agency):
    assert taxonomy.get(code).agency == agency


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("jln bolong2 parah bgt, udh 2 minggu gk diperbaiki", "jalan"),
        ("sampah numpuk blm diangkut 4 hari", "sampah"),
        ("PJU mati, jalan gelap gulita", "jaringan_listrik"),
        ("lampu jalan mati sejak kemarin", "jaringan_listrik"),
        ("got mampet, air meluap ke jalan", "saluran_air_kali_sungai"),
        ("banjir sepaha di rt 03", "banjir"),
        ("pohon tumbang menutupi jalan", "pohon"),
        ("parkir liar di bahu jalan bikin macet", "parkir_liar"),
        ("tawuran tiap malam minggu, warga resah", "gangguan_ketenteraman_dan_ketertiban"),
        ("kjp anak saya belum cair", "kartu_jakarta_pintar"),
    ],
)
def test_classifies_typical_complaints(taxonomy, text, code):
    result = classify(text, taxonomy)
    assert result.code == code
    assert result.name == taxonomy.get(code).name
    assert result.agency == taxonomy.get(code).agency
    assert 0.3 <= result.confidence <= 1.0


@pytest.mark.parametrize("text", ["", "tolong dibantu pak", "mohon perhatiannya", "🙏", "x" * 50])
def test_says_unknown_rather_than_guess(taxonomy, text):
    result = classify(text, taxonomy)
    assert result.code == "unknown"
    assert result.name == "Belum diketahui"
    assert result.agency is None and result.service_code is None


@pytest.mark.parametrize("hint", ["Parkir Liar", "parkir_liar", "PARKIR LIAR"])
def test_a_channel_hint_that_maps_to_a_category_wins(taxonomy, hint):
    result = classify("sampah numpuk di jalan", taxonomy, hint=hint)
    assert result.code == "parkir_liar"
    assert result.confidence >= 0.9


def test_an_unknown_hint_is_ignored(taxonomy):
    assert classify("sampah numpuk di jalan", taxonomy, hint="Lainnya").code == "sampah"


@pytest.mark.parametrize(
    "text",
    [
        "halo min",
        "P",
        "test",
        "",
        "   ",
        "terima kasih pak sudah diperbaiki, mantap",
        "promo slot gacor klik link",
        "coblos nomor 2 di pilkada",
        "selamat pagi",
    ],
)
def test_noise_is_high_for_greetings_thanks_spam_politics_and_empty(taxonomy, text):
    assert noise_score(text, taxonomy) >= 0.5


@pytest.mark.parametrize(
    "text",
    [
        "jalan berlubang di depan sdn 05 sudah 2 minggu",
        "halo min, sampah numpuk blm diangkut",
        "selamat pagi pak, pju mati di jl kemang raya",
    ],
)
def test_noise_is_low_for_real_complaints_even_with_a_greeting(taxonomy, text):
    assert noise_score(text, taxonomy) < 0.3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.one_of(st.none(), st.text(max_size=40)))
def test_classify_and_noise_never_raise_and_stay_in_0_1(text, hint):
    taxonomy = default_taxonomy()
    result = classify(text, taxonomy, hint=hint)
    assert 0.0 <= result.confidence <= 1.0
    assert result.code == "unknown" or taxonomy.get(result.code) is not None
    assert 0.0 <= noise_score(text, taxonomy) <= 1.0


def _all_ngram_scores(matcher: PhraseMatcher, normalized: str) -> dict[str, float]:
    """The matcher as it once was: every n-gram of every length, in order, looked up."""
    words = normalized.split()
    totals: dict[str, float] = {}
    seen: set[str] = set()
    for n in range(1, matcher._max_words + 1):
        for i in range(len(words) - n + 1):
            gram = " ".join(words[i : i + n])
            if gram in seen:
                continue
            seen.add(gram)
            for label, weight in matcher._table.get(gram, ()):
                totals[label] = totals.get(label, 0.0) + weight
    return totals


def test_phrase_lookup_by_word_starts_finds_what_every_ngram_found() -> None:
    from bench.synthetic_decisions import decisions
    from tests.normalizers.build_report_cases import texts

    taxonomy = default_taxonomy()
    made = [d.text for d in decisions(3_000, seed=3)]
    for text in texts() + made:
        normalized = normalize_for_matching(text)
        for matcher in (taxonomy.matcher, taxonomy.noise_matcher):
            got = matcher.scores(normalized)
            want = _all_ngram_scores(matcher, normalized)
            assert list(got.items()) == list(want.items()), text
