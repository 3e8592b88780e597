"""Location suggestions from free text (normalizers.places)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.geo import AreaIndex, default_index
from normalizers.places import LocationSuggestion, marker_kind, suggest_locations


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


@pytest.mark.parametrize("text", ["kel. kebon jruk 12, jalan rusak", "kel kebon jruk 3 4 hari"])
def test_a_number_after_a_misspelt_name_ends_it_and_the_answer_is_the_same_every_time(index, text):
    found = [top(text, index) for _ in range(3)]  # the closest spelling is remembered
    assert {f.kelurahan.code for f in found} == {"31.73.05.1001"}
    assert len({f.confidence for f in found}) == 1


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


# ---- addresses, markers, alleys, schools and well-known places --------------------


@pytest.mark.parametrize(
    "text",
    [
        "banjir di RT 03/RW 05 kebon kacang",
        "banjir RT.3 RW.5 Kebon Kacang",
        "banjir rt03 rw05 kebon kacang",
        "banjir RT/RW 003/005 Kebon Kacang",
        "Kebon Kacang RT 3/5 banjir",
        "banjir di RW 05 RT 03, kebon kacang",
    ],
)
def test_a_kelurahan_named_next_to_its_rt_rw_is_confident(index, text):
    suggestion = top(text, index)
    assert suggestion.kelurahan.code == "31.71.07.1006"
    assert suggestion.confidence >= 0.8
    assert index.locate(suggestion.lat, suggestion.lon).kelurahan.code == "31.71.07.1006"


def test_the_same_name_without_rt_rw_is_only_a_hint(index):
    assert top("banjir kiriman dari arah kebon kacang", index).confidence < 0.8


def test_an_rw_above_those_the_kelurahan_had_lowers_confidence(index):
    # Cideng had RW 01 to 10 in 2012 (the 2012 list misses RW 05, which is no evidence).
    above = top("RW 22 cideng banjir", index).confidence
    assert above < top("RW 05 cideng banjir", index).confidence
    assert above < top("RW 03 cideng banjir", index).confidence


@pytest.mark.parametrize(
    "text",
    [
        "RT 05/RW 03 baru saja banjir",  # "baru" (new) is also the kelurahan Baru
        "rt 4/3 tengah malam air naik",  # "tengah" (middle) is also the kelurahan Tengah
        "RT 03 RW 05 sampah belum diangkut",
        "rt01rw06 banjir sepinggang",
    ],
)
def test_rt_rw_without_a_place_name_is_not_confident(index, text):
    assert all(s.confidence < 0.8 for s in suggest_locations(text, index))


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("kel", "kelurahan"),
        ("kelurahn", "kelurahan"),
        ("kelurahaan", "kelurahan"),
        ("klrhn", "kelurahan"),
        ("kec", "kecamatan"),
        ("kecamatn", "kecamatan"),
        ("kecmtn", "kecamatan"),
        ("keluhan", None),  # complaint
        ("keluarga", None),  # family
        ("kemacetan", None),  # traffic jam
        ("kematian", None),
        ("kecelakaan", None),
    ],
)
def test_misspelt_markers_are_read_and_look_alike_words_are_not(word, kind):
    assert marker_kind(word) == kind


def test_a_misspelt_kelurahan_marker_makes_the_name_confident(index):
    suggestion = top("got mampet di kelurahn kebon kacang", index)
    assert suggestion.kelurahan.code == "31.71.07.1006"
    assert suggestion.confidence >= 0.8
    assert top("keluhan warga sebelah kebon kacang", index).confidence < 0.8


def test_an_alley_is_looked_up_as_a_gang(index):
    suggestion = top("banjir di gg. kelinci", index)
    assert suggestion.kelurahan.name == "Pasar Baru"
    assert suggestion.lat is not None
    assert suggestion.confidence < 0.8  # a street alone stays a hint
    assert suggest_locations("banjir di jl. kelinci", index) == []


@pytest.mark.parametrize(
    "text", ["banjir depan SDN Cideng 02", "SD Negeri 01 Cideng kebanjiran", "sdn 03 cideng"]
)
def test_a_state_primary_school_names_its_kelurahan(index, text):
    suggestion = top(text, index)
    assert suggestion.kelurahan.code == "31.71.01.1002"
    assert suggestion.confidence >= 0.8


def test_a_school_without_a_kelurahan_name_is_nothing(index):
    assert suggest_locations("SDN 02 pagi kebanjiran", index) == []


def test_a_kecamatan_written_in_two_words_supports_the_kelurahan(index):
    suggestion = top("banjir di batu ampar kramat jati", index)
    assert suggestion.kelurahan.name == "Batu Ampar"
    assert "kramat jati" in suggestion.evidence
    assert suggestion.confidence >= 0.85
    assert suggestion.confidence > top("banjir di batu ampar", index).confidence


def test_a_neighbour_city_in_passing_does_not_outweigh_a_marked_kelurahan_and_kecamatan(index):
    text = "banjir di kelurahan cipinang melayu kecamatan makasar, hujan di jakarta dan bekasi"
    assert top(text, index).confidence >= 0.8
    assert top("banjir di cipinang melayu bekasi", index).confidence < 0.5


# The kelurahan each place's published address gives, checked against the polygons.
WELL_KNOWN_PLACES = [
    ("masjid istiqlal", "Pasar Baru"),
    ("gereja katedral", "Pasar Baru"),
    ("istana merdeka", "Gambir"),
    ("balai kota dki", "Gambir"),
    ("stasiun jakarta kota", "Pinangsia"),
    ("stasiun tanah abang", "Kampung Bali"),
    ("pelabuhan sunda kelapa", "Penjaringan"),
    ("bandara halim perdanakusuma", "Halim Perdana Kusuma"),
    ("pasar glodok", "Glodok"),
    ("pasar induk kramat jati", "Tengah"),
    ("grand indonesia", "Kebon Melati"),
    ("plaza indonesia", "Gondangdia"),
    ("mall taman anggrek", "Tanjung Duren Selatan"),
    ("pondok indah mall", "Pondok Pinang"),
    ("rscm", "Kenari"),
    ("rs fatmawati", "Cilandak Barat"),
    ("universitas negeri jakarta", "Rawamangun"),
    ("taman suropati", "Menteng"),
    ("taman ismail marzuki", "Cikini"),
    ("dufan", "Ancol"),
    ("pasar senen", "Senen"),
    ("pasar mayestik", "Gunung"),
    ("kota kasablanka", "Menteng Dalam"),
    ("senayan city", "Gelora"),
    ("plaza senayan", "Gelora"),
    ("rsud tarakan", "Cideng"),
    ("rs pondok indah", "Pondok Pinang"),
    ("rspad gatot soebroto", "Senen"),
    ("stasiun tanjung priok", "Tanjung Priok"),
    ("sman 1 jakarta", "Pasar Baru"),
    ("sma negeri 3 jakarta", "Setia Budi"),
    ("sma n 08 jakarta", "Bukit Duri"),
]


@pytest.mark.parametrize(("place", "kelurahan"), WELL_KNOWN_PLACES)
def test_a_well_known_place_is_a_confident_suggestion_of_its_kelurahan(index, place, kelurahan):
    suggestion = top(f"banjir dekat {place} pagi ini", index)
    assert suggestion.kelurahan.name == kelurahan
    assert suggestion.confidence >= 0.8
    assert suggestion.lat is not None


@pytest.mark.parametrize(
    "text",
    ["banjir dekat stasiun", "pasar becek dan bau", "masjid kebanjiran", "rs penuh pasien banjir"],
)
def test_a_kind_of_place_without_its_name_is_nothing(index, text):
    assert suggest_locations(text, index) == []


@pytest.mark.parametrize(
    ("text", "kelurahan"),
    [
        ("banjir di Kb. Kacang", "Kebon Kacang"),
        ("got mampet Pd. Kelapa", "Pondok Kelapa"),
        ("genangan di Tj. Priok", "Tanjung Priok"),
        ("banjir kp. melayu", "Kampung Melayu"),
    ],
)
def test_map_style_abbreviations_of_a_name_are_read(index, text, kelurahan):
    assert top(text, index).kelurahan.name == kelurahan


def test_an_abbreviation_with_its_rt_rw_is_confident(index):
    suggestion = top("Pd. Kelapa RT 3/5 banjir", index)
    assert suggestion.kelurahan.name == "Pondok Kelapa"
    assert suggestion.confidence >= 0.8


def test_a_hashtag_with_a_number_names_its_kelurahan_weakly(index):
    suggestion = top("#cuacaekstrim #drainaseburuk #kebagusan2", index)
    assert suggestion.kelurahan.name == "Kebagusan"
    assert suggestion.confidence < 0.8
    assert suggest_locations("ikut program kb 2 anak", index) == []


def test_a_kecamatan_written_as_one_word_supports_the_kelurahan(index):
    # The kecamatan is Pal Merah; "palmerah" is also the name of one of its kelurahan.
    suggestion = top("kel. kemanggisan palmerah, pohon tumbang", index)
    assert suggestion.kelurahan.name == "Kemanggisan"
    assert suggestion.confidence >= 0.8
    assert "palmerah" in suggestion.evidence


def test_a_kecamatan_narrows_a_street_that_runs_through_several_kelurahan(index):
    # Jl. I Gusti Ngurah Rai runs through Jatinegara (kec. Cakung) and Klender (kec. Duren
    # Sawit), about half its length in each.
    alone = suggest_locations("jl i gusti ngurah rai banjir", index)
    assert {s.kelurahan.name for s in alone} == {"Jatinegara", "Klender"}
    assert all(s.confidence < 0.5 for s in alone)
    narrowed = top("jl i gusti ngurah rai kec cakung banjir", index)
    assert narrowed.kelurahan.name == "Jatinegara"
    assert narrowed.confidence >= 0.8
    other = top("jl i gusti ngurah rai kec duren sawit banjir", index)
    assert other.kelurahan.name == "Klender"
    assert other.confidence >= 0.8


def test_a_puskesmas_names_its_kelurahan_as_a_hint(index):
    suggestion = top("antri lama di puskesmas cideng, genangan di depan", index)
    assert suggestion.kelurahan.name == "Cideng"
    assert 0.7 < suggestion.confidence < 0.8
    assert top("puskesmas kelurahan cideng kebanjiran", index).confidence >= 0.8
    assert suggest_locations("puskesmas penuh, banjir", index) == []


def test_an_rt_rw_elsewhere_in_the_text_confirms_the_one_kelurahan_named(index):
    story = (
        "Kampung Melayu. Sudah 3 hari air{} belum surut, warga masih mengungsi di musala dan"
        " sekolah, bantuan makanan belum datang, anak-anak mulai sakit karena dingin dan lembab"
    )
    suggestion = top(story.format(" di RT 05 RW 03"), index)
    assert suggestion.kelurahan.name == "Kampung Melayu"
    assert suggestion.confidence >= 0.8
    assert top(story.format(""), index).confidence < 0.8
    two_names = "air di rt 2 rw 7 belum surut, kiriman dari kebon kacang dan cideng"
    assert all(s.confidence < 0.8 for s in suggest_locations(two_names, index))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("air udah selutut di cempaka baru, tolong", "31.71.03.1006"),
        ("Lampu jalan mati semua. Rawa Buaya", "31.73.01.1003"),
        ("komplek permata hijau blok b2 no 7 grogol utara banjir lagi", "31.74.05.1004"),
        ("got meluap di pondok bambu kemarin malam", "31.75.07.1002"),
        ("tanjung duren utara, drainase mampet", "31.73.02.1002"),
    ],
)
def test_the_one_name_of_several_words_in_a_short_text_is_confident(index, text, code):
    suggestion = top(text, index)
    assert suggestion.kelurahan.code == code
    assert 0.8 <= suggestion.confidence < 0.86  # calibrated to the line, not above it


@pytest.mark.parametrize(
    "text",
    [
        "macet panjang dari arah pondok bambu",  # a direction, not the place
        "air kiriman dekat perbatasan rawa buaya",
        "got meluap, sama kayak di sebelah grogol utara",
        "banjir di pondok bambu sama cempaka baru",  # two places
        "banjir di pasar minggu",  # also a kecamatan: the kecamatan is meant as often
        "banjir di cilangkap",  # one word: also a person's or a kampung's name
        "banjir di kelapa dua",  # also a kecamatan of Tangerang
        "sampah numpuk di kebon kosong",  # an empty plot
        "rawa buaya, kec. cakung, banjir",  # the kecamatan is elsewhere
        "Petugas gabungan masih menyedot genangan di Cempaka Baru sejak subuh, warga diminta"
        " waspada karena hujan diperkirakan turun lagi sore nanti dan pompa di pintu air belum"
        " semuanya berfungsi dengan baik",  # a long story names places in passing
    ],
)
def test_a_name_beside_the_place_or_among_others_stays_a_hint(index, text):
    assert all(s.confidence < 0.8 for s in suggest_locations(text, index))


@pytest.mark.parametrize(
    "text",
    [
        "tolong lurah dan rw utan kayu utara cek got kami",
        "pak lurah beserta jajaran rt rw utan kayu utara, banjir",
        "buat lurah kita di utan kayu utara, sampah numpuk",
    ],
)
def test_a_kelurahan_a_few_linking_words_after_its_marker_is_confident(index, text):
    suggestion = top(text, index)
    assert suggestion.kelurahan.code == "31.75.01.1002"
    assert suggestion.confidence >= 0.8
    assert "lurah" in suggestion.evidence


@pytest.mark.parametrize(
    "text",
    [
        "lurah dan rw tengah malam ga ada yg datang",  # "tengah" (middle): an everyday word
        "lurah dan warga kerja bakti, sisanya banjir dari arah utan kayu utara",
        "lurah dan rw dan rt dan warga dan semua",
    ],
)
def test_linking_words_do_not_carry_a_marker_to_any_later_name(index, text):
    assert all(s.confidence < 0.8 for s in suggest_locations(text, index))


def test_rt_mistyped_as_ri_or_ry_is_still_an_address(index):
    for text in ("ri 04/07 kebon kacang got meluap", "got meluap ry04/7 kebon kacang"):
        suggestion = top(text, index)
        assert suggestion.kelurahan.code == "31.71.07.1006"
        assert suggestion.lat is not None  # placed at the RW's point
    # Words ending in "ri" or "ry" before a date are not addresses.
    assert top("banjir dari 04/07 sampai sekarang di kebon kacang", index).lat is None
    assert top("story 04/07 kebon kacang", index).lat is None


def test_a_numbered_school_needs_jakarta_after_its_number(index):
    # Every city has a SMAN 8; Jakarta's is in Bukit Duri.
    assert top("banjir di depan sman 8 jakarta", index).kelurahan.name == "Bukit Duri"
    assert suggest_locations("banjir di depan sman 8", index) == []
    assert suggest_locations("banjir di depan sman 8 bekasi", index) == []
    assert suggest_locations("sman 9 jakarta kebanjiran", index) == []


@pytest.mark.parametrize(
    ("text", "kelurahan"),
    [
        ("banjir di jl. kemukus, pinangsia", "Pinangsia"),
        ("jl. agung karya 2 papanggo, pju mati", "Papanggo"),
    ],
)
def test_a_street_with_the_kelurahan_it_lies_in_is_an_address(index, text, kelurahan):
    suggestion = top(text, index)
    assert suggestion.kelurahan.name == kelurahan
    assert suggestion.confidence >= 0.8
    assert suggestion.lat is not None  # on the street


@pytest.mark.parametrize(
    "text",
    [
        "got meluap di jl. letjen mt haryono, cawang",  # the street runs through many
        "jl. ampasit 3, slipi",  # the street lies elsewhere
        "jl. rorotan 5 banjir",  # the kelurahan's name is the street's own word
    ],
)
def test_a_street_and_a_name_that_do_not_agree_stay_below_the_line(index, text):
    assert all(s.confidence < 0.8 for s in suggest_locations(text, index))


@pytest.mark.parametrize(
    "text", ["R.T. 03 R.W. 07 kebon kacang banjir", "r.t 3/7 kebon kacang", "R.W. 07 kebon kacang"]
)
def test_rt_rw_written_with_dots_between_the_letters(index, text):
    suggestion = top(text, index)
    assert suggestion.kelurahan.code == "31.71.07.1006"
    assert suggestion.lat is not None  # placed at RW 07's point
    assert suggestion.confidence >= 0.8


def test_letters_r_and_t_inside_words_are_no_address(index):
    assert top("kabar terbaru 3/7 kebon kacang", index).lat is None
