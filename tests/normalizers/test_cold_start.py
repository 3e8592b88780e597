"""The keyword rules as the cold start: they answer "unknown" rather than guess from a
word no keyword really covers."""

from __future__ import annotations

import pytest

from normalizers.category import classify


@pytest.mark.parametrize(
    "text",
    [
        # "tapi" ("but") was read as "tpi", the fish auction's abbreviation.
        "Anak saya daftar SMP negeri tapi tidak diterima, padahal rumah dekat",
        "Di samping kelurahan masih jadi danau ini, tapi tidak ada yang datang",
        "sudah lapor berkali kali tpi belum ada tanggapan",
    ],
)
def test_a_text_saying_but_is_never_filed_under_the_fish_auction(text):
    assert classify(text).code != "tempat_pelelangan_ikan"


@pytest.mark.parametrize(
    "text",
    ["Mohon info jam buka kantor kelurahan", "30 jam lebih", "Hujan badai", "pak rumah saya pak"],
)
def test_a_text_no_keyword_covers_is_unknown(text):
    assert classify(text).code == "unknown"


def test_the_fish_auction_is_still_found_by_its_own_words():
    assert classify("Tempat pelelangan ikan Muara Angke becek dan bau").code == (
        "tempat_pelelangan_ikan"
    )


def test_a_school_admission_complaint_goes_to_ppdb():
    text = "Anak saya tidak diterima di SMP negeri padahal zonasi dekat, tapi yang jauh diterima"
    assert classify(text).code == "ppdb"
