"""Made-up admin decisions for tests and benchmarks of `kanal learn`: never shipped, never
trained into a shipped model.

Each complaint is a sentence around one keyword of its category in config/taxonomy.toml,
with the noise of real messages: misspelt keywords, slang, fillers, places; each
not-a-complaint message is built from the greetings, thanks and spam of
config/taxonomy_noise.toml. With `new_words_share`, that share of the complaints is instead
about one of 16 everyday categories in words the taxonomy does not list (NEW_WORDS: what
the keyword rules cannot know and only learning from admins can). Deterministic for a seed.
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
# Complaints in everyday words none of which is a keyword of config/taxonomy.toml (a test
# holds the keyword rules to "unknown" on each), by the category an admin would give them.
NEW_WORDS: dict[str, tuple[str, ...]] = {
    "jalan": (
        "jalanan kayak kubangan kerbau",
        "banyak kawah di jalan raya",
        "motor sering jatuh jalannya hancur lebur",
        "jalan raya rusak parah penuh kubangan",
    ),
    "sampah": (
        "kantong kresek numpuk ga diambil petugas",
        "onggokan kresek sisa dapur",
        "buangan warga ga dijemput gerobak",
        "kresek sisa dapur dibuang ke lahan kosong",
    ),
    "banjir": (
        "rumah warga kerendem air",
        "jalanan jadi kolam tiap hujan deras",
        "air sampai pinggang tiap hujan",
        "rumah kerendem air setinggi lutut",
    ),
    "saluran_air_kali_sungai": (
        "comberan ga ngalir airnya item",
        "parit depan rumah penuh endapan",
        "air comberan mandek",
        "parit ga ngalir bau",
    ),
    "pohon": (
        "batang kayu gede hampir nimpa atap",
        "cabang gede hampir patah nimpa kabel",
        "kayu gede condong ke rumah warga",
    ),
    "parkir_liar": (
        "motor nangkring di pinggir jalan bikin sempit",
        "mobil nginep di badan jalan tiap malam",
        "kendaraan ditaruh seenaknya makan separuh jalan",
    ),
    "jaringan_listrik": (
        "bohlam di tiang ga nyala",
        "gang gulita tiap malam bohlam tiang mati",
        "lampu di tiang padam semua",
    ),
    "trotoar": (
        "tempat jalan kaki dipake jualan",
        "jalur buat jalan kaki ancur",
        "ubin buat jalan kaki copot copot",
    ),
    "gangguan_ketenteraman_dan_ketertiban": (
        "anak muda teriak teriak tiap malam sampai subuh",
        "orkes dangdut sampai jam 2 pagi",
        "remaja kebut kebutan tiap malam minggu",
    ),
    "arus_lalu_lintas": (
        "kendaraan ga gerak sama sekali tiap sore",
        "antrian mobil mengular berjam jam",
        "kendaraan numpuk ga bergerak di perempatan",
    ),
    "jaringan_air_bersih": (
        "keran rumah kering kerontang",
        "air ledeng ga ngucur dari subuh",
        "keran ga ngucur warga ga bisa mandi",
    ),
    "pencemaran_lingkungan": (
        "udara sesak bau kimia dari pabrik sebelah",
        "cairan item dari pabrik dibuang ke parit",
        "bau kimia bikin warga sesak napas",
    ),
    "transportasi_publik": (
        "bis kota ngebut ngebut bahayain penumpang",
        "kendaraan umum ga lewat lewat",
        "sopir bis kota nurunin penumpang sembarangan",
    ),
    "penyakit_masyarakat": (
        "warung jual ciu oplosan",
        "ada lapak taruhan bola",
        "anak muda pesta oplosan tiap malam",
    ),
    "demam_berdarah_dengue": (
        "banyak tetangga kena db",
        "anak tetangga dirawat trombosit turun",
        "warga banyak yang trombositnya drop",
    ),
    "penyandang_masalah_kesejahteraan_sosial_pmks": (
        "ada orang kumuh tidur di emperan toko",
        "pak tua minta minta di lampu merah",
        "ibu bawa bayi minta minta di perempatan",
    ),
}


@dataclass(frozen=True, slots=True)
class Decision:
    text: str
    category: str | None  # None when the admin rejected it as not a complaint
    noise: bool
    new_words: bool = False  # a complaint in words the taxonomy does not list


def _misspell(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :] if rng.random() < 0.5 else word[:i] + word[i] + word[i:]


def decisions(
    n: int, *, seed: int = 1, noise_share: float = 0.12, new_words_share: float = 0.0
) -> list[Decision]:
    """`n` decisions in arrival order; categories drawn with a long tail like JAKI's, or
    (a `new_words_share` of the complaints) evenly among NEW_WORDS' in their words."""
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
        # Drawn only when asked for: the same seed makes the same decisions as before.
        new_words = bool(new_words_share) and rng.random() < new_words_share
        if new_words:
            code = rng.choice(sorted(NEW_WORDS))
            keyword = rng.choice(NEW_WORDS[code])
        else:
            category = categories[order[rng.choices(range(len(categories)), weights)[0]]]
            code, keyword = category.code, rng.choice(category.keywords)
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
        out.append(Decision(text, code, False, new_words))
    return out
