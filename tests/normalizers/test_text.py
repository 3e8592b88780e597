"""Text clean-up and slang normalization (normalizers.text)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from normalizers.text import MAX_TEXT_CHARS, clean_text, normalize_for_matching


def test_clean_text_keeps_newlines_and_collapses_spaces():
    assert clean_text("  Jalan   rusak\r\n\r\n\r\n\r\ndi  sini \t ") == "Jalan rusak\n\ndi sini"


def test_clean_text_strips_control_characters_and_normalizes_to_nfc():
    assert clean_text("a\x00b\x1bc\u200bd") == "abcd"
    assert clean_text("Cafe\u0301") == "Café"


def test_clean_text_caps_length():
    assert len(clean_text("a" * (MAX_TEXT_CHARS + 50))) == MAX_TEXT_CHARS


def test_normalize_expands_slang_and_de_elongates():
    assert normalize_for_matching("Jln bolong BANGEEET, gk diperbaiki2 yg tdk") == (
        "jalan berlubang banget tidak diperbaiki yang tidak"
    )
    assert normalize_for_matching("blm sdh dgn jl.") == "belum sudah dengan jalan"


@given(st.text(max_size=500))
def test_both_never_raise_and_are_idempotent(text):
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned
    normalized = normalize_for_matching(text)
    assert normalize_for_matching(normalized) == normalized
