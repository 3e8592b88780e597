"""The made-up decisions of bench/synthetic_decisions.py: the complaints in new words are
ones the keyword rules cannot read, and they appear only when asked for."""

from __future__ import annotations

from bench.synthetic_decisions import NEW_WORDS, decisions
from normalizers.category import UNKNOWN_CODE, classify, default_taxonomy


def test_every_new_words_phrase_is_unknown_to_the_keyword_rules():
    taxonomy = default_taxonomy()
    for code, phrases in NEW_WORDS.items():
        assert taxonomy.get(code) is not None, code
        for phrase in phrases:
            assert classify(phrase, taxonomy).code == UNKNOWN_CODE, phrase


def test_new_words_are_drawn_only_when_asked_and_keep_their_category():
    assert not any(d.new_words for d in decisions(300, seed=4))
    made = decisions(300, seed=4, new_words_share=0.5)
    new = [d for d in made if d.new_words]
    assert 100 < len(new) < 170 and all(d.category in NEW_WORDS for d in new)
