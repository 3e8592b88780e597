"""Complaint categories: the taxonomy of `config/taxonomy.toml`, a keyword classifier and
the not-a-complaint (noise) score.

The classifier is deliberately simple and explainable: weighted keyword phrases over
slang-normalized text. It answers "unknown" rather than guess; the admin decides.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from normalizers.text import SLANG, normalize_for_matching

CONFIG_DIRECTORY = Path(__file__).resolve().parent.parent / "config"
DEFAULT_TAXONOMY = CONFIG_DIRECTORY / "taxonomy.toml"
NOISE_FILE_NAME = "taxonomy_noise.toml"

UNKNOWN_CODE = "unknown"
UNKNOWN_NAME = "Belum diketahui"
# Below this the classifier says "unknown": measured on bench/data/categories_labelled.jsonl.
MIN_CONFIDENCE = 0.3
HINT_CONFIDENCE = 0.95
MAX_PHRASE_WORDS = 6

# The ten categories JakLapor's own classifier was trained on are by far the most used;
# a slight prior breaks keyword ties toward them.
COMMON_CATEGORIES = frozenset(
    {
        "gangguan_ketenteraman_dan_ketertiban",
        "jalan",
        "jaringan_listrik",
        "parkir_liar",
        "pelayanan_perhubungan",
        "pohon",
        "saluran_air_kali_sungai",
        "sampah",
        "tata_ruang_dan_bangunan",
        "transportasi_publik",
    }
)
COMMON_PRIOR = 0.1


def snake_case(name: str) -> str:
    """`Saluran Air, Kali/Sungai` → `saluran_air_kali_sungai`."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", name.lower())).strip("_")


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str
    agency: str
    service_code: str
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CategoryResult:
    """What the classifier (or the channel's hint) says; code "unknown" when unsure."""

    code: str
    name: str
    agency: str | None
    service_code: str | None
    confidence: float


UNKNOWN = CategoryResult(UNKNOWN_CODE, UNKNOWN_NAME, None, None, 0.0)


def _phrase_weight(phrase: str) -> float:
    # Multi-word phrases ("jalan berlubang", "got mampet") are far more specific than
    # single words, which often appear in passing.
    return 1.0 + 0.75 * (phrase.count(" "))


def _rewritten_word(phrase: str, key: str) -> bool:
    """A one-word keyword that the slang table turns into another word ("tpi", the fish
    auction, becomes "tapi", "but") would match that word in every message: dropped."""
    word = phrase.strip().lower()
    return word in SLANG and SLANG[word] == key


class PhraseMatcher:
    """Whole-word phrase lookup over normalized text: phrase → labels with weights."""

    def __init__(self, phrases: Iterable[tuple[str, str]]) -> None:
        self._table: dict[str, list[tuple[str, float]]] = {}
        self._max_words = 1
        for label, phrase in phrases:
            key = normalize_for_matching(phrase)
            if not key or _rewritten_word(phrase, key):
                continue
            entries = self._table.setdefault(key, [])
            if all(existing != label for existing, _ in entries):
                entries.append((label, _phrase_weight(key)))
            self._max_words = max(self._max_words, key.count(" ") + 1)
        self._max_words = min(self._max_words, MAX_PHRASE_WORDS)
        # Every start of a phrase that ends at a word's end ("got", "got mampet"): a run of
        # words that is none of these starts no phrase, and longer runs are not looked up.
        self._starts = frozenset(
            " ".join(key.split()[:n])
            for key in self._table
            for n in range(1, min(key.count(" ") + 1, self._max_words) + 1)
        )

    def scores(self, normalized: str) -> dict[str, float]:
        words = normalized.split()
        starts, table, most = self._starts, self._table, self._max_words
        # Each phrase found, once (a phrase repeated in one message is still one piece of
        # evidence), at its first (length, position): the order the n-grams of every length
        # were once all enumerated in, so that the weights add up in the same order.
        found: dict[str, tuple[int, int]] = {}
        for i, word in enumerate(words):
            if word not in starts:
                continue
            gram, n = word, 1
            while True:
                if gram in table and gram not in found:
                    found[gram] = (n, i)
                if n == most or i + n >= len(words):
                    break
                gram = f"{gram} {words[i + n]}"
                if gram not in starts:
                    break
                n += 1
        totals: dict[str, float] = {}
        for gram in sorted(found, key=found.__getitem__) if len(found) > 1 else found:
            for label, weight in table[gram]:
                totals[label] = totals.get(label, 0.0) + weight
        return totals


class Taxonomy:
    """The category list with lookups and the matchers built from its keywords."""

    def __init__(self, categories: list[Category], noise: dict[str, list[str]]) -> None:
        self.categories = categories
        self._by_code = {c.code: c for c in categories}
        self._by_service_code = {c.service_code: c for c in categories}
        self._by_name_key = {snake_case(c.name): c for c in categories}
        self.matcher = PhraseMatcher((c.code, kw) for c in categories for kw in c.keywords)
        self.noise_matcher = PhraseMatcher(
            (group, phrase) for group, phrases in noise.items() for phrase in phrases
        )

    @classmethod
    def load(cls, path: Path | None = None) -> Taxonomy:
        path = path or DEFAULT_TAXONOMY
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        categories = [
            Category(
                code=entry["code"],
                name=entry["name"],
                agency=entry["agency"],
                service_code=entry["service_code"],
                keywords=tuple(entry.get("keywords", ())),
            )
            for entry in data["category"]
        ]
        noise_path = path.with_name(NOISE_FILE_NAME)
        noise: dict[str, list[str]] = {}
        if noise_path.exists():
            noise = tomllib.loads(noise_path.read_text(encoding="utf-8")).get("noise", {})
        elif "noise" in data:
            noise = data["noise"]
        return cls(categories, noise)

    def get(self, code: str) -> Category | None:
        return self._by_code.get(code)

    def by_service_code(self, service_code: str) -> Category | None:
        return self._by_service_code.get(service_code)

    def resolve_hint(self, hint: str) -> Category | None:
        """A channel's category label (code or official name, any case) → category."""
        key = snake_case(hint or "")
        return self._by_code.get(key) or self._by_name_key.get(key)


@functools.cache
def default_taxonomy() -> Taxonomy:
    """The taxonomy of `config/taxonomy.toml`, loaded once per process."""
    return Taxonomy.load()


def category_result(category: Category, confidence: float) -> CategoryResult:
    return CategoryResult(
        category.code,
        category.name,
        category.agency,
        category.service_code,
        round(min(1.0, max(0.0, confidence)), 3),
    )


def category_scores(normalized: str, taxonomy: Taxonomy) -> dict[str, float]:
    """Keyword evidence per category code for already-normalized text."""
    return taxonomy.matcher.scores(normalized)


def classify(
    text: str, taxonomy: Taxonomy | None = None, hint: str | None = None
) -> CategoryResult:
    """The category of a message, or code "unknown" when the evidence is weak or split."""
    taxonomy = taxonomy or default_taxonomy()
    if hint:
        hinted = taxonomy.resolve_hint(hint)
        if hinted is not None:
            return category_result(hinted, HINT_CONFIDENCE)
    return classify_scores(category_scores(normalize_for_matching(text or ""), taxonomy), taxonomy)


def classify_scores(scores: dict[str, float], taxonomy: Taxonomy) -> CategoryResult:
    """The category that `category_scores` point to, as `classify` decides it."""
    if not scores:
        return UNKNOWN
    ranked = sorted(
        (
            (score + (COMMON_PRIOR if code in COMMON_CATEGORIES else 0.0), code)
            for code, score in scores.items()
        ),
        reverse=True,
    )
    top_score, top_code = ranked[0]
    second = ranked[1][0] if len(ranked) > 1 else 0.0
    strength = 1.0 - math.exp(-top_score / 1.5)
    margin = (top_score - second) / top_score
    confidence = strength * (0.45 + 0.55 * margin)
    if confidence < MIN_CONFIDENCE:
        return UNKNOWN
    category = taxonomy.get(top_code)
    if category is None:  # pragma: no cover - matcher labels come from the same list
        return UNKNOWN
    return category_result(category, confidence)


_NOISE_WEIGHTS = {"greeting": 1.0, "thanks": 1.3, "spam": 1.8, "politics": 1.5}


def noise_score(text: str, taxonomy: Taxonomy | None = None) -> float:
    """How likely a message is not a complaint, 0..1 (greeting, thanks, spam, politics…)."""
    taxonomy = taxonomy or default_taxonomy()
    return noise_score_normalized(normalize_for_matching(text or ""), taxonomy)


def noise_score_normalized(
    normalized: str, taxonomy: Taxonomy, scores: dict[str, float] | None = None
) -> float:
    """`noise_score` of already-normalized text; `scores`, when given, are its
    `category_scores` (computed once for `classify_scores` too)."""
    words = normalized.split()
    if len(words) == 0 or len(normalized) < 3:
        return 1.0
    hits = taxonomy.noise_matcher.scores(normalized)
    noise = sum(hits.get(group, 0.0) * weight for group, weight in _NOISE_WEIGHTS.items())
    complaint = hits.get("complaint", 0.0)
    if scores is None:
        scores = category_scores(normalized, taxonomy)
    evidence = sum(scores.values())
    logit = -1.5 + 1.1 * noise - 0.9 * complaint - 0.8 * min(evidence, 4.0)
    if len(words) <= 3:
        logit += 1.5  # "halo min", "tes", "P": too short to be a report
    elif len(words) >= 15:
        logit -= 0.7
    return round(1.0 / (1.0 + math.exp(-logit)), 3)
