"""The learned text models: stored without pickle, read back the same, and consulted by
`categorize` only when confident, never over a channel's own category."""

from __future__ import annotations

import numpy as np
import pytest

from bench.synthetic_decisions import decisions
from normalizers.canonical import categorize
from normalizers.category import default_taxonomy
from normalizers.textmodel import Example, Prediction, TextModels, train


@pytest.fixture(scope="module")
def models() -> TextModels:
    return train([Example(d.text, d.category, d.noise) for d in decisions(1500, seed=3)])


def test_a_model_read_back_from_its_bytes_predicts_the_same(models):
    again = TextModels.from_bytes(models.to_bytes())
    for text in ("sampahh numpuk di depan rumah", "selamat pagi min", "lampu jalan mati"):
        a, b = models.category(text), again.category(text)
        assert a is not None and b is not None and a.code == b.code
        assert abs(a.confidence - b.confidence) < 0.01
        assert abs(models.noise(text) - again.noise(text)) < 0.01


def test_a_stored_model_holding_a_pickle_is_refused():
    import io

    buffer = io.BytesIO()
    np.savez(buffer, format=np.array([1]), vocabulary=np.array([object()], dtype=object))
    with pytest.raises(ValueError):
        TextModels.from_bytes(buffer.getvalue())


def test_category_source_says_who_answered(models):
    taxonomy = default_taxonomy()
    # No model: the keyword rules.
    assert categorize("Lampu PJU mati", taxonomy, None, None).source == "rules"
    # A misspelling the rules cannot read, the model can.
    learned = categorize("sampahh numpuk di depan rumah saya", taxonomy, None, models)
    assert (learned.code, learned.source) == ("sampah", "model")
    # The channel's own category (JAKI's) wins over the model.
    hinted = categorize("sampahh numpuk di depan rumah saya", taxonomy, "Jalan", models)
    assert (hinted.code, hinted.source) == ("jalan", "rules")
    # Words the model never saw: it stays silent and the rules answer.
    assert categorize("qqq zzz", taxonomy, None, models).source == "rules"


def test_noise_is_scored_by_the_model_when_there_is_one(models):
    assert models.noise("selamat pagi min, terima kasih") > 0.5
    assert models.noise("sampah numpuk di depan rumah sudah 2 minggu") < 0.5


def test_numbers_of_four_digits_or_more_never_become_features():
    from normalizers.textmodel import terms

    features = terms("Banjir di rumah 081299887766, RT 03 nomor 1234, NIK 3171012345678901")
    assert not [f for f in features if any(n in f for n in ("0812", "1234", "3171"))]
    assert "w banjir" in features and "w 03" in features


class _Sure:
    """A model that always answers one category with one confidence."""

    def __init__(self, code: str, confidence: float) -> None:
        self.guess = Prediction(code, confidence)

    def category(self, text: str) -> Prediction:
        return self.guess


def test_the_model_overrules_a_keyword_rule_only_when_much_surer():
    taxonomy = default_taxonomy()
    text = "Lampu PJU mati"  # the rules find street lighting
    ruled = categorize(text, taxonomy, None, None)
    assert ruled.code != "unknown"
    other = next(c.code for c in taxonomy.categories if c.code != ruled.code)
    unsure = categorize(text, taxonomy, None, _Sure(other, 0.7))  # type: ignore[arg-type]
    assert (unsure.code, unsure.source) == (ruled.code, "rules")
    sure = categorize(text, taxonomy, None, _Sure(other, 0.9))  # type: ignore[arg-type]
    assert (sure.code, sure.source) == (other, "model")
    # Agreeing with the rules, or answering where they say unknown, needs less.
    agreeing = categorize(text, taxonomy, None, _Sure(ruled.code, 0.6))  # type: ignore[arg-type]
    assert agreeing.source == "model"
    filled = categorize("qqq zzz", taxonomy, None, _Sure(other, 0.6))  # type: ignore[arg-type]
    assert (filled.code, filled.source) == (other, "model")
