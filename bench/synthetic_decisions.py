"""Made-up admin decisions for tests and benchmarks of `kanal learn`: never shipped, never
trained into a shipped model.

Each complaint is a sentence around one keyword of its category in config/taxonomy.toml,
with the noise of real messages: misspelt keywords, slang, fillers, places; each
not-a-complaint message is built from the greetings, thanks and spam of
config/taxonomy_noise.toml. Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from normalizers.category import default_taxonomy

OPENINGS = ["", "", "Pak, ", "Min, ", "Mohon bantuan, ", "Lapor min ", "Assalamualaikum, "]
WHERE = [
    "di depan rumah saya",
    "di gang sebelah masjid",
    "dekat pasar",
    "di RT 03/RW 05",
    "di jl. mawar",
    "dekat sekolah",
    "di ujung komplek",
    "depan warung bu Ani",
    "di belakang kantor kelurahan",
]
SINCE = ["sudah 2 minggu", "dari kemarin", "sejak pagi", "udah sebulan", "sudah lama", ""]
ASKS = [
    "mohon segera ditindak",
    "tolong dicek",
    "tolong diperbaiki",
    "mohon perhatiannya",
    "gimana ini pak",
    "warga resah",
    "",
]
NOISE_EXTRA = ["", "min", "pak", "ya", "🙏", "semoga sehat selalu"]


@dataclass(frozen=True, slots=True)
class Decision:
    text: str
    category: str | None  # None when the admin rejected it as not a complaint
    noise: bool


def _misspell(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :] if rng.random() < 0.5 else word[:i] + word[i] + word[i:]


def decisions(n: int, *, seed: int = 1, noise_share: float = 0.12) -> list[Decision]:
    """`n` decisions in arrival order; categories drawn with a long tail like JAKI's."""
    rng = random.Random(seed)
    taxonomy = default_taxonomy()
    noise_source = taxonomy.noise_matcher  # built from taxonomy_noise.toml
    noise_phrases = sorted(
        {phrase for phrase, labels in noise_source._table.items() if labels[0][0] != "complaint"}
    )
    categories = [c for c in taxonomy.categories if c.keywords]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(categories))]
    order = list(range(len(categories)))
    rng.shuffle(order)
    out: list[Decision] = []
    for _ in range(n):
        if rng.random() < noise_share:
            words = rng.sample(noise_phrases, rng.randint(1, 3))
            out.append(Decision(" ".join([*words, rng.choice(NOISE_EXTRA)]).strip(), None, True))
            continue
        category = categories[order[rng.choices(range(len(categories)), weights)[0]]]
        keyword = rng.choice(category.keywords)
        if rng.random() < 0.35:
            keyword = " ".join(_misspell(w, rng) for w in keyword.split())
        parts = [
            rng.choice(OPENINGS) + keyword,
            rng.choice(WHERE),
            rng.choice(SINCE),
            rng.choice(ASKS),
        ]
        text = " ".join(p for p in parts if p)
        if rng.random() < 0.3:
            text = text.lower()
        out.append(Decision(text, category.code, False))
    return out
