"""Location suggestions from a complaint's text: kelurahan, kecamatan, kota, streets and
alleys, RT/RW addresses, postal codes, state primary schools and well-known places named in
informal Indonesian.

A suggestion is for the admin, never a geo-tag. Confidence is calibrated to
prefer silence: a top suggestion at ≥ 0.8 must be right at least 9 times in 10 on our own
texts (`bench/bench_places.py`, `bench/data/locations_labelled.jsonl`) and 19 times in 20 on
real geo-located flood reports (`bench/bench_places_samples.py`).
"""

from __future__ import annotations

import csv
import difflib
import functools
import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from normalizers.geo import Area, AreaIndex, default_index

MAX_TEXT_CHARS = 5_000  # longer texts are e-mails with quoted threads; the start is enough
MAX_NAME_WORDS = 4
MAX_STREET_WORDS = 5

KELURAHAN_MARKERS = frozenset(
    {"kel", "kelurahan", "klurahan", "kelurhan", "kelrahan", "lurah", "kelur", "klrhn", "kelrhn"}
)
KECAMATAN_MARKERS = frozenset(
    {"kec", "kecamatan", "kecamtan", "kcmtn", "kecmatan", "camat", "kcm", "kecmtn"}
)
STREET_MARKERS = frozenset({"jl", "jln", "jalan", "jlan", "jl.raya"})
# "Gg. Kelinci" names the alley Gang Kelinci, not a street Kelinci.
GANG_MARKERS = frozenset({"gg", "gang"})
# DKI's state primary schools are named after their kelurahan: "SDN Cideng 02".
SCHOOL_MARKERS = frozenset({"sdn"})
# So are most community health centres ("Puskesmas Kelurahan Cideng", "puskesmas cideng"),
# but a kecamatan's own puskesmas may stand in another kelurahan: a hint, not proof.
HEALTH_CENTRE_MARKERS = frozenset({"puskesmas", "pkm"})

# Words that may stand between a kelurahan marker and its name: "lurah dan rw pulo gebang",
# "pak lurah beserta jajaran rt rw kebon kacang", "lurah kita di lebak bulus".
MARKER_GAP_WORDS = frozenset(
    {"dan", "rt", "rw", "pak", "bapak", "bu", "ibu", "sama", "serta", "beserta", "jajaran"}
    | {"kita", "kami", "di", "dari", "wilayah"}
)
MAX_MARKER_GAP = 4
# Words that put a bare name beside the place meant rather than on it: "dari arah X",
# "dekat perbatasan X", "air kiriman dari X".
PROXIMITY_WORDS = frozenset(
    {"dekat", "deket", "arah", "dari", "ke", "menuju", "sebelah", "samping", "perbatasan"}
    | {"batas", "sampai", "sampe", "hingga", "tembus", "antara", "kiriman", "seberang"}
)
# A bare name is the place of the complaint when it is the only place in a short text;
# longer texts are narratives and news that name places in passing.
SHORT_TEXT_CHARS = 160
# Names of several words that are everyday phrases ("kebon kosong", an empty plot) or also
# well-known places around Jakarta (Kelapa Dua and Bambu Apus in Tangerang, Tanah Sereal
# in Bogor, Sumur Batu in Bekasi, a Pasar Baru in every town): alone they stay a hint.
NOT_ALONE_NAMES = frozenset(
    {
        "kelapa dua",
        "bambu apus",
        "tanah sereal",
        "sumur batu",
        "pasar baru",
        "tanah tinggi",
        "karang anyar",
        "kali anyar",
        "jembatan besi",
        "jembatan lima",
        "kebon kosong",
        "kebon baru",
        "kebon kelapa",
        "kebon pala",
        "kayu putih",
        "kampung rawa",
        "kampung tengah",
        "kp tengah",
        "rawa barat",
        "wijaya kusuma",
        "wijaya kesuma",
    }
)

# Single-word kelurahan names that are also everyday words or personal/other place names:
# seen without a "kel." marker they are not evidence.
AMBIGUOUS_BARE_NAMES = frozenset(
    {
        "kartini",
        "kenari",
        "kramat",
        "karet",
        "guntur",
        "bangka",
        "gunung",
        "pulo",
        "jati",
        "tengah",
        "dukuh",
        "gedong",
        "baru",
        "rambutan",
        "setu",
        "galur",
        "serdang",
        "kamal",
        "selong",
        "tangki",
        "susukan",
        "bintaro",
        "gelora",
        "kapuk",
        "grogol",
    }
)
# Street names that are ordinary words: "jalan rusak" is not Jalan Rusak.
STREET_STOPWORDS = frozenset(
    {
        "rusak",
        "raya",
        "utama",
        "baru",
        "besar",
        "kecil",
        "tengah",
        "lama",
        "damai",
        "depan",
        "belakang",
        "masuk",
        "keluar",
        "utara",
        "selatan",
        "barat",
        "timur",
        "berlubang",
        "bolong",
        "gelap",
        "licin",
        "macet",
        "sempit",
        "umum",
        "menuju",
        "sudah",
        "belum",
        "tidak",
        "sekitar",
        "dekat",
        "arah",
        "tol",
        "kaki",
        "pintu",
        "lingkungan",
        "kampung",
        "pasar",
        "stasiun",
        "sekolah",
        "masjid",
        "gang",
        "buntu",
        "perumahan",
        "komplek",
        "kompleks",
        "terus",
        "banjir",
        "rawa",
        "kali",
        "setapak",
    }
)

# Abbreviations of the first word of place names, as in map addresses ("Kb. Jeruk",
# "Pd. Kelapa", "Tj. Priok", "Kp. Melayu"). Short words that are also everyday words
# (tim, bar, ut) are left out.
NAME_ABBREVIATIONS = {
    "kp": "kampung",
    "kmp": "kampung",
    "kamp": "kampung",
    "pd": "pondok",
    "pdk": "pondok",
    "tj": "tanjung",
    "tjg": "tanjung",
    "kb": "kebon",
    "kbn": "kebon",
    "ps": "pasar",
    "psr": "pasar",
    "cemp": "cempaka",
    "kby": "kebayoran",
    "brt": "barat",
    "tmr": "timur",
    "utr": "utara",
    "sel": "selatan",
    "slt": "selatan",
}

# Older or everyday names of kelurahan (alias → official kelurahan name, kecamatan name).
KELURAHAN_ALIASES: dict[str, tuple[str, str]] = {
    "kampung tengah": ("Tengah", "Kramatjati"),
    "kp tengah": ("Tengah", "Kramatjati"),
    "pal meriem": ("Palmeriam", "Matraman"),
    "tanjung priuk": ("Tanjung Priok", "Tanjung Priok"),
    "harapan mulya": ("Harapan Mulia", "Kemayoran"),
    "wijaya kesuma": ("Wijaya Kusuma", "Grogol Petamburan"),
}

# Neighbouring cities people name: a text naming one is likely about a place outside DKI
# even when a street name also exists in Jakarta (Bintaro, Margonda, Ciledug...).
OUTSIDE_DKI = frozenset(
    {
        "depok",
        "bekasi",
        "tangerang",
        "tangsel",
        "bogor",
        "ciledug",
        "cibinong",
        "cikarang",
        "serpong",
        "karawaci",
        "cileungsi",
        "sawangan",
        "cimanggis",
        "margonda",
        "cinere",
        "pamulang",
        "ciputat",
        "jatiasih",
        "bintaro sektor",
        "pondok aren",
        "tambun",
    }
)
# What comes before a space in a name of OUTSIDE_DKI: only a word that is one of these
# may begin a pair of words that is such a name.
_OUTSIDE_PAIR_STARTS = frozenset(
    name[:i] for name in OUTSIDE_DKI for i, char in enumerate(name) if char == " "
)
_OUTSIDE_FACTOR = 0.5

_KOTA_DIRECTIONS = {
    "31.71": ("pusat", "pus"),
    "31.72": ("utara", "ut"),
    "31.73": ("barat", "bar"),
    "31.74": ("selatan", "sel"),
    "31.75": ("timur", "tim"),
}

# Well-known places people name instead of a kelurahan; coordinates are located through
# the AreaIndex so the kelurahan always comes from the polygons. Only places whose
# published address names the same kelurahan as the polygons are listed (the test suite
# holds that list): a station on a railway that is itself a kelurahan boundary is not.
LANDMARKS: dict[str, tuple[float, float]] = {
    "monas": (-6.1754, 106.8272),
    "monumen nasional": (-6.1754, 106.8272),
    "bundaran hi": (-6.1950, 106.8230),
    "blok m": (-6.2443, 106.8006),
    "kota tua": (-6.1352, 106.8133),
    "museum fatahillah": (-6.1352, 106.8133),
    "kebun binatang ragunan": (-6.3125, 106.8200),
    "stasiun manggarai": (-6.2099, 106.8502),
    "pelabuhan tanjung priok": (-6.1040, 106.8806),
    "stasiun gambir": (-6.1766, 106.8306),
    "pasar tanah abang": (-6.1870, 106.8120),
    "gelora bung karno": (-6.2186, 106.8017),
    "gbk": (-6.2186, 106.8017),
    "taman mini": (-6.3025, 106.8952),
    "tmii": (-6.3025, 106.8952),
    "stasiun jatinegara": (-6.2150, 106.8700),
    "terminal kampung rambutan": (-6.3085, 106.8822),
    "terminal pulo gadung": (-6.1837, 106.9093),
    "bundaran senayan": (-6.2276, 106.8011),
    # Mosques, churches and offices of state.
    "masjid istiqlal": (-6.1702, 106.8310),
    "mesjid istiqlal": (-6.1702, 106.8310),
    "istiqlal": (-6.1702, 106.8310),
    "gereja katedral": (-6.1694, 106.8333),
    "katedral jakarta": (-6.1694, 106.8333),
    "istana merdeka": (-6.1701, 106.8240),
    "istana negara": (-6.1685, 106.8225),
    "balai kota dki": (-6.1814, 106.8283),
    "balaikota dki": (-6.1814, 106.8283),
    "balai kota jakarta": (-6.1814, 106.8283),
    "balaikota jakarta": (-6.1814, 106.8283),
    # Stations, the port and the airport.
    "stasiun kota": (-6.1376, 106.8146),
    "stasiun jakarta kota": (-6.1376, 106.8146),
    "stasiun beos": (-6.1376, 106.8146),
    "st jakarta kota": (-6.1376, 106.8146),
    "stasiun tanah abang": (-6.1856, 106.8106),
    "st tanah abang": (-6.1856, 106.8106),
    "pelabuhan sunda kelapa": (-6.1237, 106.8087),
    "bandara halim": (-6.2666, 106.8910),
    "bandara halim perdanakusuma": (-6.2666, 106.8910),
    "bandara halim perdana kusuma": (-6.2666, 106.8910),
    # Markets and malls.
    "pasar glodok": (-6.1450, 106.8150),
    "pasar induk kramat jati": (-6.2958, 106.8698),
    "pasar induk kramatjati": (-6.2958, 106.8698),
    "grand indonesia": (-6.1951, 106.8204),
    "plaza indonesia": (-6.1932, 106.8219),
    "mall taman anggrek": (-6.1786, 106.7922),
    "mal taman anggrek": (-6.1786, 106.7922),
    "pondok indah mall": (-6.2656, 106.7838),
    "pondok indah mal": (-6.2656, 106.7838),
    # Hospitals and campuses.
    "rscm": (-6.1976, 106.8473),
    "rs cipto mangunkusumo": (-6.1976, 106.8473),
    "rsupn cipto mangunkusumo": (-6.1976, 106.8473),
    "rumah sakit cipto mangunkusumo": (-6.1976, 106.8473),
    "rs fatmawati": (-6.2930, 106.7930),
    "rsup fatmawati": (-6.2930, 106.7930),
    "rumah sakit fatmawati": (-6.2930, 106.7930),
    "universitas negeri jakarta": (-6.1940, 106.8790),
    "kampus unj": (-6.1940, 106.8790),
    # Parks and places to go out.
    "taman suropati": (-6.1993, 106.8323),
    "taman ismail marzuki": (-6.1897, 106.8391),
    "dufan": (-6.1251, 106.8335),
    "dunia fantasi": (-6.1251, 106.8335),
    "taman impian jaya ancol": (-6.1251, 106.8335),
    # More markets, malls and hospitals.
    "pasar senen": (-6.1738, 106.8424),
    "pasar mayestik": (-6.2410, 106.7930),
    "kota kasablanka": (-6.2243, 106.8428),
    "mall kota kasablanka": (-6.2243, 106.8428),
    "senayan city": (-6.2272, 106.7975),
    "plaza senayan": (-6.2255, 106.7996),
    "rsud tarakan": (-6.1718, 106.8104),
    "rs tarakan": (-6.1718, 106.8104),
    "rs pondok indah": (-6.2837, 106.7817),
    "rspad gatot soebroto": (-6.1766, 106.8372),
    "rspad gatot subroto": (-6.1766, 106.8372),
    "stasiun tanjung priok": (-6.1103, 106.8813),
}
# State senior high schools by number ("SMAN 8 Jakarta", "SMA Negeri 8 Jakarta"): every
# city has a SMAN 8, so only with "jakarta" after the number.
NUMBERED_SCHOOLS: dict[tuple[str, int], tuple[float, float]] = {
    ("sma", 1): (-6.1675, 106.8372),
    ("sma", 3): (-6.2107, 106.8285),
    ("sma", 8): (-6.2236, 106.8565),
}


def _school_phrases(level: str, number: int) -> list[str]:
    numbers = {str(number), f"{number:02d}"}
    forms = (f"{level}n", f"{level} negeri", f"{level} n", level)
    return [f"{form} {n} jakarta" for form in forms for n in sorted(numbers)]


@dataclass(frozen=True, slots=True)
class LocationSuggestion:
    """One possible location of the complaint, with the words that point to it."""

    kelurahan: Area
    kecamatan: Area
    kota: Area
    lat: float | None
    lon: float | None
    confidence: float
    evidence: str


# ---- the gazetteer of names, built once per AreaIndex --------------------------------


_ASCII_FOLD = {code: chr(code).lower() if chr(code).isalnum() else " " for code in range(128)}


def fold(text: str) -> str:
    """Lower-case ASCII with every other character a space, same length as the input."""
    if text.isascii():  # most texts: one C-level pass
        return text.translate(_ASCII_FOLD)
    out = []
    for char in text:
        if char.isascii():
            out.append(char.lower() if char.isalnum() else " ")
            continue
        base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        out.append(base[0].lower() if base and base[0].isalnum() else " ")
    return "".join(out)


def _tokens_key(name: str) -> str:
    return " ".join(fold(name).split())


@dataclass(slots=True)
class _StreetEntry:
    lengths: dict[str, float] = field(default_factory=dict)  # kelurahan code → metres
    points: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(slots=True)
class Gazetteer:
    index: AreaIndex
    kelurahan: dict[str, list[str]]  # "kampung melayu" and "kampungmelayu" → codes
    kecamatan: dict[str, list[str]]
    kota: dict[str, str]  # alias → kota code
    streets: dict[str, _StreetEntry]
    rw: dict[tuple[int, str], tuple[float, float]]
    rw_max: dict[str, int]  # kelurahan code → its highest RW number
    landmarks: dict[str, tuple[str, float, float]]  # phrase → kelurahan code, lat, lon
    kelurahan_compact: dict[str, list[str]]
    kecamatan_compact: dict[str, list[str]]
    # Names with their words joined or split another way: kelurahan, kecamatan codes.
    respelled: dict[str, tuple[list[str], list[str]]]
    # Every start of a key of the phrase tables (landmarks, kota) and of the name tables
    # (kelurahan, kecamatan, respelled) that ends at a word's end: a run of words whose
    # start is none of these names nothing, and the lookups skip it.
    phrase_starts: frozenset[str] = frozenset()
    name_starts: frozenset[str] = frozenset()
    # Misspelt names: the closest compact name, compared only with those that start alike.
    kelurahan_spellings: Spellings = field(default_factory=lambda: Spellings({}))
    kecamatan_spellings: Spellings = field(default_factory=lambda: Spellings({}))


class Spellings:
    """The compact names of one table by first letter (in the table's order), and the
    closest of them to a misspelt key, remembered: the same misspellings come back
    ("jatinegra", "kebon jruk"), and each costs a comparison with every name of its
    letter."""

    def __init__(self, compact: dict[str, list[str]]):
        self.by_initial: dict[str, list[tuple[str, list[str]]]] = {}
        for name, codes in compact.items():
            self.by_initial.setdefault(name[0], []).append((name, codes))
        self.closest = functools.lru_cache(maxsize=8192)(self._closest)

    def _closest(self, key: str) -> tuple[float, list[str]] | None:
        """(ratio, codes) of the first name of similar length (±2 letters) with the highest
        difflib ratio, if it is 0.85 or more."""
        best: tuple[float, list[str]] | None = None
        for name, codes in self.by_initial.get(key[0], ()):
            if abs(len(name) - len(key)) > 2:
                continue
            matcher = difflib.SequenceMatcher(None, key, name)
            # quick_ratio bounds ratio from above: a name it rules out could not win.
            bound = matcher.quick_ratio()
            if bound < 0.85 or (best is not None and bound <= best[0]):
                continue
            ratio = matcher.ratio()
            if ratio >= 0.85 and (best is None or ratio > best[0]):
                best = (ratio, codes)
        return best


def _word_starts(*tables: Iterable[str]) -> frozenset[str]:
    """The starts of "kampung melayu": "kampung", "kampung melayu"."""
    starts: set[str] = set()
    for table in tables:
        for key in table:
            starts.update(key[:i] for i, char in enumerate(key) if char == " ")
            starts.add(key)
    return frozenset(starts)


def _add(table: dict[str, list[str]], key: str, code: str) -> None:
    codes = table.setdefault(key, [])
    if code not in codes:
        codes.append(code)


@functools.lru_cache(maxsize=4)
def gazetteer_for(index: AreaIndex, directory: Path | None = None) -> Gazetteer:
    directory = directory or Path(__file__).resolve().parent.parent / "config" / "areas"
    kelurahan: dict[str, list[str]] = {}
    kelurahan_compact: dict[str, list[str]] = {}
    for match in index.kelurahan_matches:
        key = _tokens_key(match.kelurahan.name)
        _add(kelurahan, key, match.kelurahan.code)
        _add(kelurahan_compact, key.replace(" ", ""), match.kelurahan.code)
    for alias, (name, kecamatan_name) in KELURAHAN_ALIASES.items():
        for match in index.kelurahan_matches:
            if match.kelurahan.name == name and match.kecamatan.name == kecamatan_name:
                _add(kelurahan, alias, match.kelurahan.code)
                _add(kelurahan_compact, alias.replace(" ", ""), match.kelurahan.code)
    kecamatan: dict[str, list[str]] = {}
    kecamatan_compact: dict[str, list[str]] = {}
    for area in index.kecamatan_areas:
        key = _tokens_key(area.name)
        _add(kecamatan, key, area.code)
        _add(kecamatan_compact, key.replace(" ", ""), area.code)
    kota: dict[str, str] = {}
    for code, (word, short) in _KOTA_DIRECTIONS.items():
        for prefix in ("jakarta", "jkt", "jak", "dki"):
            kota[f"{prefix} {word}"] = code
            kota[f"{prefix} {short}"] = code
            kota[f"{prefix}{short}"] = code
            kota[f"{prefix}{word}"] = code
        kota[f"jakarta {word}"] = code
    kota["jakut"] = "31.72"
    for alias in ("kepulauan seribu", "kep seribu", "pulau seribu", "kepseribu"):
        kota[alias] = "31.01"

    streets: dict[str, _StreetEntry] = defaultdict(_StreetEntry)
    with (directory / "streets.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            words = _tokens_key(row["name"]).split()
            while words and words[0] in ("jalan", "jl", "jln"):
                words = words[1:]
            if words and words[0] in GANG_MARKERS:  # looked up after "gg."/"gang" only
                words = ["gang", *words[1:]]
            if not words:
                continue
            keys = {" ".join(words)}
            if len(words) > 1 and words[-1] == "raya":
                keys.add(" ".join(["raya", *words[:-1]]))
            for key in keys:
                entry = streets[key]
                code = row["kelurahan_code"]
                entry.lengths[code] = entry.lengths.get(code, 0.0) + float(row["length_m"] or 0)
                entry.points.setdefault(code, (float(row["lat"]), float(row["lon"])))
    rw: dict[tuple[int, str], tuple[float, float]] = {}
    with (directory / "rw.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rw[(int(row["rw"]), row["kelurahan_code"])] = (float(row["lat"]), float(row["lon"]))
    rw_max: dict[str, int] = {}
    for number, code in rw:
        rw_max[code] = max(number, rw_max.get(code, 0))
    landmarks: dict[str, tuple[str, float, float]] = {}
    places = dict(LANDMARKS)
    for (level, number), point in NUMBERED_SCHOOLS.items():
        places.update((phrase, point) for phrase in _school_phrases(level, number))
    for phrase, (lat, lon) in places.items():
        located = index.locate(lat, lon)
        if located is not None:
            landmarks[phrase] = (located.kelurahan.code, lat, lon)
    respelled = _respellings(kelurahan, kecamatan, kelurahan_compact, kecamatan_compact)
    return Gazetteer(
        index,
        kelurahan,
        kecamatan,
        kota,
        dict(streets),
        rw,
        rw_max,
        landmarks,
        kelurahan_compact,
        kecamatan_compact,
        respelled,
        _word_starts(landmarks, kota),
        _word_starts(kelurahan, kecamatan, respelled),
        Spellings(kelurahan_compact),
        Spellings(kecamatan_compact),
    )


def _respellings(
    kelurahan: dict[str, list[str]],
    kecamatan: dict[str, list[str]],
    kelurahan_compact: dict[str, list[str]],
    kecamatan_compact: dict[str, list[str]],
) -> dict[str, tuple[list[str], list[str]]]:
    """Names with their words joined or split the other way: "palmerah" for the kecamatan
    Pal Merah, "kramat jati" for Kramatjati."""
    respelled: dict[str, tuple[list[str], list[str]]] = {}
    for compact in kelurahan_compact.keys() | kecamatan_compact.keys():
        codes = (kelurahan_compact.get(compact, []), kecamatan_compact.get(compact, []))
        respelled[compact] = codes
        for cut in range(3, len(compact) - 2):
            respelled[f"{compact[:cut]} {compact[cut:]}"] = codes
    for key in kelurahan.keys() | kecamatan.keys():
        # "pulo gadung" is the kelurahan Pulo Gadung and how people write Pulogadung.
        respelled.pop(key, None)
        exact = (kelurahan.get(key, []), kecamatan.get(key, []))
        joined = key.replace(" ", "")
        either = (
            exact[0] or kelurahan_compact.get(joined, []),
            exact[1] or kecamatan_compact.get(joined, []),
        )
        if either != exact:
            respelled[key] = either
    return respelled


# ---- finding mentions ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: int
    end: int


@dataclass(slots=True)
class _Mention:
    kind: str  # kelurahan | kecamatan | kota | street | postal | landmark
    codes: dict[str, float]  # code → share of the evidence (sums to 1)
    start: int
    end: int
    strength: float  # how sure we are the words name this kind of place
    point: dict[str, tuple[float, float]] = field(default_factory=dict)
    bare: bool = False  # a name with no marker, address or landmark around it
    # A bare name of two or more words, not also a kecamatan, with no "dekat"/"arah"/"dari"
    # before it: the place itself when it is the only one named in a short text.
    may_stand_alone: bool = False


_TOKEN = re.compile(r"[a-z0-9]+")
# An address inside a kelurahan: "RT 03/RW 05", "RT.3 RW.5", "rt03 rw05", "RT/RW 03/05",
# "rt4/3" (RT 4 of RW 3), "RW 05 RT 03", "R.T. 03 R.W. 05" or a lone "RW 5"; "ri 05/03"
# and "ry 05/03" are "rt" mistyped (no word is "ri" or "ry" before two numbers with a
# slash). Read on the lower-cased text, where "/" still separates the two numbers; the
# group named rw holds the RW.
_NUMBER = r"\s*[.:]?\s*0*\d{1,3}"
_RT = r"r\.?t"  # "rt", "r.t."
_RW = r"r\.?w"
_ADDRESS = re.compile(
    r"\b(?:"
    rf"{_RT}\s*[./]?\s*{_RW}{_NUMBER}\s*[/.-]\s*0*(?P<a>\d{{1,3}})"
    rf"|{_RT}{_NUMBER}\s*[/,.-]?\s*{_RW}\s*[.:]?\s*0*(?P<b>\d{{1,3}})"
    rf"|(?:{_RT}|ri|ry){_NUMBER}\s*/\s*0*(?P<c>\d{{1,3}})"
    rf"|{_RW}\s*[.:]?\s*0*(?P<d>\d{{1,3}})(?:\s*[/,.-]?\s*{_RT}{_NUMBER})?"
    r")(?!\d)"
)
_POSTAL = re.compile(r"(?<!\d)(1[0-4]\d{3})(?!\d)")


@functools.lru_cache(maxsize=8192)
def marker_kind(word: str) -> str | None:
    """ "kelurahan" or "kecamatan" when the word announces one ("kel", "kelurahn", "kecamatn")."""
    if word in KELURAHAN_MARKERS:
        return "kelurahan"
    if word in KECAMATAN_MARKERS:
        return "kecamatan"
    if not 7 <= len(word) <= 12:
        return None
    # Typos of the full words; the prefixes keep out look-alikes such as "keluhan"
    # (complaint), "kematian" or "keamanan".
    if word.startswith("kel") and "r" in word:
        full, kind = "kelurahan", "kelurahan"
    elif word.startswith("kec"):
        full, kind = "kecamatan", "kecamatan"
    else:
        return None
    return kind if difflib.SequenceMatcher(None, word, full).ratio() >= 0.86 else None


_MARKER_WORDS = (
    KELURAHAN_MARKERS
    | KECAMATAN_MARKERS
    | STREET_MARKERS
    | GANG_MARKERS
    | SCHOOL_MARKERS
    | HEALTH_CENTRE_MARKERS
    | {"sd"}
)


def _may_be_marker(word: str) -> bool:
    return word in _MARKER_WORDS or word.startswith(("kel", "kec"))


def _tokens_word(word: str, gaz: Gazetteer) -> str:
    """The word a name table would use: "pd" is "pondok", "kebagusan2" (a hashtag) is
    "kebagusan"."""
    expanded = NAME_ABBREVIATIONS.get(word)
    if expanded is not None:
        return expanded
    if word[-1].isdigit() and not word[0].isdigit():
        letters = word.rstrip("0123456789")
        if letters in gaz.kelurahan_compact:
            return letters
    return word


def _close_match(
    words: list[_Token],
    table: dict[str, list[str]],
    compact: dict[str, list[str]],
    spellings: Spellings,
) -> tuple[int, list[str], bool] | None:
    """Longest run of words after a marker naming an area: (length, codes, exact)."""
    for n in range(min(MAX_NAME_WORDS, len(words)), 0, -1):
        key = " ".join(w.text for w in words[:n])
        codes = table.get(key) or compact.get(key.replace(" ", ""))
        if codes:
            return n, codes, True
    # Typos ("jatinegra", "kebon jruk"): a close compact spelling of similar length; the
    # closest of all, the longer run of words on a tie. No area's name holds a number: a
    # run of words ends before one ("… sudah 12 hari" is no misspelt "sudah12hari").
    best: tuple[float, int, list[str]] | None = None
    longest = min(3, len(words))
    for i in range(longest):
        if words[i].text.isdigit():
            longest = i
            break
    for n in range(longest, 0, -1):
        key = "".join(w.text for w in words[:n])
        if len(key) < 5:
            continue
        found = spellings.closest(key)
        if found is not None and (best is None or found[0] > best[0]):
            best = (found[0], n, found[1])
    if best is not None:
        return best[1], best[2], False
    return None


def _name_behind_gap(
    tokens: list[_Token], first: int, gaz: Gazetteer
) -> tuple[int, tuple[int, list[str], bool]] | None:
    """A kelurahan named a few linking words after its marker ("lurah dan rw pulo gebang"):
    where the name starts and (length, codes, exact). Exact names only, and no single word
    that is also an everyday word."""
    for skip in range(1, MAX_MARKER_GAP + 1):
        if first + skip > len(tokens) or tokens[first + skip - 1].text not in MARKER_GAP_WORDS:
            return None
        start = first + skip
        for n in range(min(MAX_NAME_WORDS, len(tokens) - start), 0, -1):
            key = " ".join(t.text for t in tokens[start : start + n])
            if n == 1 and (key in AMBIGUOUS_BARE_NAMES or len(key) < 4):
                continue
            codes = gaz.kelurahan.get(key)
            if codes:
                return start, (n, codes, True)
    return None


def _street_shares(entry: _StreetEntry) -> dict[str, float]:
    total = sum(entry.lengths.values()) or 1.0
    if total <= 0:
        return {code: 1 / len(entry.lengths) for code in entry.lengths}
    return {code: length / total for code, length in entry.lengths.items()}


def _longest_start(tokens: list[_Token], i: int, most: int, starts: frozenset[str]) -> int:
    """How many words from the i-th, at most `most`, may still be a key whose starts are
    `starts`: no key is longer, so the lookups of longer runs are skipped (0: none)."""
    end = min(i + most, len(tokens))
    if i >= end or tokens[i].text not in starts:
        return 0
    key, n = tokens[i].text, 1
    for k in range(i + 1, end):
        key = f"{key} {tokens[k].text}"
        if key not in starts:
            break
        n += 1
    return n


def _find_mentions(
    text: str, gaz: Gazetteer
) -> tuple[list[_Mention], list[tuple[int, _Mention]], bool]:
    folded = fold(text[:MAX_TEXT_CHARS])
    tokens = [_Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(folded)]
    for k, token in enumerate(tokens):
        if token.text in NAME_ABBREVIATIONS or token.text[-1].isdigit():
            tokens[k] = _Token(_tokens_word(token.text, gaz), token.start, token.end)
    mentions: list[_Mention] = []
    used = [False] * len(tokens)

    def claim(i: int, n: int) -> None:
        for k in range(i, min(i + n, len(tokens))):
            used[k] = True

    # 1. Landmarks and kota aliases: fixed phrases.
    for i in range(len(tokens)):
        if tokens[i].text not in gaz.phrase_starts:
            continue  # no landmark or kota alias starts with this word
        for n in range(_longest_start(tokens, i, 4, gaz.phrase_starts), 0, -1):
            if any(used[i : i + n]):
                continue
            key = " ".join(t.text for t in tokens[i : i + n])
            if key in gaz.landmarks:
                code, lat, lon = gaz.landmarks[key]
                mentions.append(
                    _Mention(
                        "landmark",
                        {code: 1.0},
                        tokens[i].start,
                        tokens[i + n - 1].end,
                        1.0,
                        {code: (lat, lon)},
                    )
                )
                claim(i, n)
                break
            if key in gaz.kota:
                start = (
                    tokens[i - 1].start if i and tokens[i - 1].text == "kota" else tokens[i].start
                )
                mentions.append(
                    _Mention("kota", {gaz.kota[key]: 1.0}, start, tokens[i + n - 1].end, 1.0)
                )
                claim(i, n)
                break

    # 2. Marked names: "kel. X", "kecamatan X", "SDN X 02", "puskesmas X", "jl. X", "gg. X".
    for i, token in enumerate(tokens):
        if used[i] or i + 1 >= len(tokens) or not _may_be_marker(token.text):
            continue
        marker = marker_kind(token.text)
        school = token.text in SCHOOL_MARKERS or (
            token.text == "sd" and tokens[i + 1].text in ("n", "negeri")
        )
        health_centre = token.text in HEALTH_CENTRE_MARKERS
        if marker is not None or school or health_centre:
            first = i + 1
            if school:  # "SDN 02 Cideng", "SD Negeri Cideng 02"
                while first < len(tokens) and (
                    tokens[first].text in ("n", "negeri") or tokens[first].text.isdigit()
                ):
                    first += 1
            is_kel = marker != "kecamatan"
            found = _close_match(
                tokens[first : first + MAX_NAME_WORDS],
                gaz.kelurahan if is_kel else gaz.kecamatan,
                gaz.kelurahan_compact if is_kel else gaz.kecamatan_compact,
                gaz.kelurahan_spellings if is_kel else gaz.kecamatan_spellings,
            )
            gap = False
            if found is None and marker == "kelurahan":
                behind = _name_behind_gap(tokens, first, gaz)
                if behind is not None:
                    first, found, gap = behind[0], behind[1], True
            if found is None:
                continue
            n, codes, exact = found
            mentions.append(
                _Mention(
                    "kelurahan" if is_kel else "kecamatan",
                    {code: 1 / len(codes) for code in codes},
                    token.start,
                    tokens[first + n - 1].end,
                    (1.0 if exact else 0.85)
                    * (_GAP_STRENGTH if gap else 1.0)
                    * (_SCHOOL_STRENGTH if school else 1.0)
                    * (_HEALTH_CENTRE_STRENGTH if health_centre else 1.0),
                )
            )
            claim(i, first + n - i)
        elif token.text in STREET_MARKERS or token.text in GANG_MARKERS:
            rest = tokens[i + 1 : i + 1 + MAX_STREET_WORDS]
            prefix = ["gang"] if token.text in GANG_MARKERS else []
            for n in range(min(MAX_STREET_WORDS, len(rest)), 0, -1):
                words = [w.text for w in rest[:n]]
                key = " ".join(words)
                if n == 1 and (len(key) < 4 or key in STREET_STOPWORDS or key.isdigit()):
                    continue
                if words[0] in STREET_STOPWORDS and words[0] != "raya":
                    break
                entry = gaz.streets.get(" ".join([*prefix, *words]))
                if entry is None:
                    continue
                mentions.append(
                    _Mention(
                        "street",
                        _street_shares(entry),
                        token.start,
                        rest[n - 1].end,
                        1.0,
                        dict(entry.points),
                    )
                )
                # The street's words stay unclaimed: "jl. kebon sirih" also names the
                # kelurahan Kebon Sirih, which is a second, consistent piece of evidence.
                used[i] = True
                break

    # 3. Addresses: the words right before or after "RT 03/RW 05" name its kelurahan.
    addresses: list[tuple[int, _Mention]] = []  # RW number, its words
    has_address = (
        "rt" in folded
        or "rw" in folded
        or " ri" in folded
        or " ry" in folded
        or " r t " in folded
        or " r w " in folded
        or folded.startswith(("ri", "ry", "r t ", "r w "))
    )
    for address in _ADDRESS.finditer(text[:MAX_TEXT_CHARS].lower()) if has_address else ():
        number = int(next(g for g in address.group("a", "b", "c", "d") if g))
        addresses.append((number, _Mention("rw", {}, address.start(), address.end(), 1.0)))
        after = [k for k, t in enumerate(tokens) if t.start >= address.end()][:3]
        before = [k for k, t in enumerate(tokens) if t.end <= address.start()][-MAX_NAME_WORDS:]
        # After: the name itself or behind one word ("rt 4/3 rawa setu", "rw 5 di cideng").
        spans = [
            (after[0] + skip, after[0] + skip + n) for skip in (0, 1) if after for n in (4, 3, 2, 1)
        ]
        if before and address.start() - tokens[before[-1]].end <= 2:
            spans += [(before[-1] + 1 - n, before[-1] + 1) for n in (4, 3, 2, 1)]
        for lo, hi in spans:
            if lo < 0 or hi > len(tokens) or any(used[lo:hi]):
                continue
            key = " ".join(t.text for t in tokens[lo:hi])
            named = gaz.kelurahan.get(key)
            if not named:
                continue
            ambiguous = hi - lo == 1 and (key in AMBIGUOUS_BARE_NAMES or len(key) < 4)
            mentions.append(
                _Mention(
                    "kelurahan",
                    {code: 1 / len(named) for code in named},
                    tokens[lo].start,
                    tokens[hi - 1].end,
                    _ADDRESS_AMBIGUOUS_STRENGTH if ambiguous else _ADDRESS_STRENGTH,
                )
            )
            kec_codes = gaz.kecamatan.get(key)
            if kec_codes:
                mentions.append(
                    _Mention(
                        "kecamatan",
                        {c: 1 / len(kec_codes) for c in kec_codes},
                        tokens[lo].start,
                        tokens[hi - 1].end,
                        _ADDRESS_STRENGTH * 0.8,
                    )
                )
            claim(lo, hi - lo)
            break

    # 4. Bare names: multi-word names anywhere, single words unless everyday words.
    for i in range(len(tokens)):
        if tokens[i].text not in gaz.name_starts:
            continue  # no kelurahan or kecamatan name starts with this word
        for n in range(_longest_start(tokens, i, MAX_NAME_WORDS, gaz.name_starts), 0, -1):
            if any(used[i : i + n]):
                continue
            key = " ".join(t.text for t in tokens[i : i + n])
            if n == 1 and (key in AMBIGUOUS_BARE_NAMES or len(key) < 4):
                continue
            kel_codes = gaz.kelurahan.get(key)
            kec_codes = gaz.kecamatan.get(key)
            if n <= 2 and key in gaz.respelled:  # "kramat jati", "palmerah", "tanahabang"
                kel_codes, kec_codes = gaz.respelled[key]
            if not kel_codes and not kec_codes:
                continue
            start, end = tokens[i].start, tokens[i + n - 1].end
            strength = 0.75 if n > 1 else 0.6
            if kel_codes:
                beside = any(t.text in PROXIMITY_WORDS for t in tokens[max(0, i - 2) : i])
                mentions.append(
                    _Mention(
                        "kelurahan",
                        {c: 1 / len(kel_codes) for c in kel_codes},
                        start,
                        end,
                        strength,
                        bare=True,
                        may_stand_alone=n > 1
                        and not kec_codes
                        and not beside
                        and key not in NOT_ALONE_NAMES,
                    )
                )
            if kec_codes:
                mentions.append(
                    _Mention(
                        "kecamatan",
                        {c: 1 / len(kec_codes) for c in kec_codes},
                        start,
                        end,
                        strength * 0.8,
                    )
                )
            claim(i, n)
            break

    # 5. Postal codes.
    for postal in _POSTAL.finditer(folded):
        postal_codes = gaz.index.postal_codes.get(postal.group(1))
        if postal_codes:
            shares = {c: 1 / len(postal_codes) for c in postal_codes}
            mentions.append(_Mention("postal", shares, postal.start(), postal.end(), 1.0))
    words = [t.text for t in tokens]
    outside = not OUTSIDE_DKI.isdisjoint(words) or any(
        f"{a} {b}" in OUTSIDE_DKI for a, b in itertools.pairwise(words) if a in _OUTSIDE_PAIR_STARTS
    )
    return mentions, addresses, outside


# ---- scoring ---------------------------------------------------------------------

# How far each kind of evidence alone goes; a lone "kel. X" may reach 0.8, a lone street
# name may not (the 2012 list has many duplicates and misses newer streets).
_BASE = {"kelurahan": 0.86, "landmark": 0.82, "postal": 0.62, "street": 0.58}
_KEC_SUPPORT = 0.2
_KEC_SUPPORT_STREET = 0.3
_KOTA_SUPPORT = 0.08
_RW_SUPPORT = 0.06
_RW_CONFLICT = 0.85
_SCHOOL_STRENGTH = 0.95
_HEALTH_CENTRE_STRENGTH = 0.9
_ADDRESS_STRENGTH = 0.9
_ADDRESS_AMBIGUOUS_STRENGTH = 0.7
_GAP_STRENGTH = 0.95
# A lone bare name of several words in a short text was the right kelurahan in 9 of 9 such
# texts of bench/data/locations_labelled.jsonl before this rule (2 of 3 on real flood
# reports, the wrong one a long news text): worth the confident line (0.86 × 0.94 = 0.81),
# not more.
_STANDS_ALONE_STRENGTH = 0.94
# A bare name beside a street that lies (90% of its length) in that kelurahan: 11 of 11
# right in bench/data/locations_labelled.jsonl before this rule, 4 of them single words
# stuck at 0.797. Read as a multi-word bare name, it and the street reach 0.85.
_WHOLE_STREET = 0.9
_NAME_BESIDE_STREET_STRENGTH = 0.75
_MAX_CONFIDENCE = 0.97
_EXPLAINED_WEIGHT = 0.3


def _overlaps(a: _Mention, b: _Mention) -> bool:
    return a.start < b.end and b.start < a.end


def _narrow(
    street: _Mention, kecamatan: list[_Mention], kota: list[_Mention], index: AreaIndex
) -> None:
    """Keep only the street's kelurahan inside the kecamatan (else the kota) the text names:
    "jl. X, kec. Y" is the part of X in Y, whatever share of X's length that is."""
    for named, level in ((kecamatan, 0), (kota, 1)):
        wanted = {c for m in named if not _overlaps(m, street) for c in m.codes}
        if not wanted:
            continue
        inside = {}
        for code, share in street.codes.items():
            match = index.by_kelurahan_code(code)
            if match is not None and (match.kecamatan, match.kota)[level].code in wanted:
                inside[code] = share
        if inside:
            total = sum(inside.values())
            street.codes = {code: share / total for code, share in inside.items()}
            return


def _standing_alone(
    direct: list[_Mention], kecamatan: list[_Mention], index: AreaIndex
) -> _Mention | None:
    """The bare name that is the only place the text names, if there is one. A kecamatan
    named beside it must be its own ("batu ampar, kramat jati"), and the kecamatan's name
    read as a kelurahan too is the same words, not a second place."""
    candidates = [m for m in direct if m.may_stand_alone and len(m.codes) == 1]
    if len(candidates) != 1:
        return None
    (alone,) = candidates
    (code,) = alone.codes
    match = index.by_kelurahan_code(code)
    if match is None or any(match.kecamatan.code not in m.codes for m in kecamatan):
        return None
    for other in direct:
        if other is alone or set(other.codes) == {code}:
            continue
        if not any(_overlaps(other, m) for m in kecamatan):
            return None
    return alone


def suggest_locations(
    text: str, index: AreaIndex | None = None, limit: int = 3
) -> list[LocationSuggestion]:
    """Ranked kelurahan the text seems to name, best first; empty when nothing is clear."""
    if not text or limit <= 0:
        return []
    index = index or default_index()
    gaz = gazetteer_for(index)
    mentions, addresses, outside = _find_mentions(text, gaz)
    direct = [m for m in mentions if m.kind in _BASE]
    if not direct:
        return []
    kecamatan_mentions = [m for m in mentions if m.kind == "kecamatan"]
    kota_mentions = [m for m in mentions if m.kind == "kota"]
    for street in (m for m in direct if m.kind == "street" and len(m.codes) > 1):
        _narrow(street, kecamatan_mentions, kota_mentions, index)
    # An RT/RW anywhere in the text and the one kelurahan it names, which has that RW:
    # the writer is giving an address, so the name reads as if written beside it.
    bare = [m for m in direct if m.bare]
    if addresses and len(bare) == 1 and len(bare[0].codes) == 1:
        (code,) = bare[0].codes
        if any((number, code) in gaz.rw for number, _words in addresses):
            bare[0].strength = max(bare[0].strength, _ADDRESS_STRENGTH)
    # The one place a short text names, in a name of several words that is nothing else:
    # "banjir di sunter agung", "perum griya asri blok c3 srengseng sawah".
    alone = (
        _standing_alone(direct, kecamatan_mentions, index)
        if len(text) <= SHORT_TEXT_CHARS
        else None
    )
    if alone is not None:
        alone.strength = max(alone.strength, _STANDS_ALONE_STRENGTH)
    # A street that lies in the one kelurahan a name beside it names is an address:
    # "jl. tawakal 9 tomang", "jl. dewi sartika, cawang".
    for name in bare:
        if len(name.codes) != 1:
            continue
        (code,) = name.codes
        if any(
            m.kind == "street"
            and m.codes.get(code, 0.0) >= _WHOLE_STREET
            and not _overlaps(m, name)
            for m in direct
        ):
            name.strength = max(name.strength, _NAME_BESIDE_STREET_STRENGTH)

    scored: dict[str, tuple[float, list[_Mention], tuple[float, float] | None]] = {}
    for code in {c for m in direct for c in m.codes}:
        match = index.by_kelurahan_code(code)
        if match is None:
            continue
        own = [m for m in direct if code in m.codes]
        kinds = {m.kind for m in own}
        # Independent kinds of evidence combine like independent witnesses (noisy-OR);
        # within one kind only the strongest counts, repeats add nothing.
        doubt = 1.0
        for kind in kinds:
            doubt *= 1.0 - max(
                _BASE[m.kind] * m.strength * m.codes[code] for m in own if m.kind == kind
            )
        confidence = 1.0 - doubt
        evidence = list(own)
        # Support only counts from words other than those already used for this kelurahan:
        # the kecamatan Menteng does not corroborate the kelurahan Menteng from one word.
        kec_support = [
            m
            for m in kecamatan_mentions
            if match.kecamatan.code in m.codes and not any(_overlaps(m, o) for o in own)
        ]
        kec_conflict = [
            m
            for m in kecamatan_mentions
            if match.kecamatan.code not in m.codes and not any(_overlaps(m, o) for o in direct)
        ]
        if kec_support:
            confidence += _KEC_SUPPORT_STREET if kinds == {"street"} else _KEC_SUPPORT
            evidence.append(kec_support[0])
        elif kec_conflict:
            confidence *= 0.5 if any(m.strength >= 0.85 for m in kec_conflict) else 0.8
        kota_support = [m for m in kota_mentions if match.kota.code in m.codes]
        if kota_support:
            if not kec_support:
                confidence += _KOTA_SUPPORT * (2 if kinds == {"street"} else 1)
            evidence.append(kota_support[0])
        elif kota_mentions:
            confidence *= 0.5
        point = next((m.point[code] for m in own if code in m.point and m.kind == "landmark"), None)
        # An RW the kelurahan has confirms it (weakly: most have RW 1 to 10); an RW
        # number above every RW it had in 2012 speaks against it.
        confirming = [(n, m) for n, m in addresses if (n, code) in gaz.rw]
        if confirming:
            number, words = confirming[0]
            confidence += _RW_SUPPORT
            point = point or gaz.rw[(number, code)]
            evidence.append(words)
        elif addresses and all(n > gaz.rw_max.get(code, 999) for n, _words in addresses):
            confidence *= _RW_CONFLICT
        if point is None:
            street_points = [m.point[code] for m in own if m.kind == "street" and code in m.point]
            point = street_points[0] if street_points else None
        # A neighbour city named in passing ("hujan di jakarta dan bekasi") does not
        # outweigh a kelurahan and its kecamatan both named with their markers.
        marked = any(m.kind == "kelurahan" and m.strength >= 0.85 for m in own)
        if outside and not (marked and kec_support):
            confidence *= _OUTSIDE_FACTOR
        scored[code] = (min(confidence, _MAX_CONFIDENCE), evidence, point)

    # Competing readings share belief: two equally plausible kelurahan cannot both be 0.8.
    # A candidate whose every word is already part of the leader's evidence ("johar baru"
    # read as the kelurahan Johar Baru, when it is the kecamatan of "kel. tanah tinggi")
    # is an alternative reading of the same words and competes only weakly.
    leader = max(scored.items(), key=lambda item: (item[1][0], item[0]), default=None)
    weights: dict[str, float] = {}
    for code, (score, _evidence, _point) in scored.items():
        weights[code] = score
        if leader is not None and code != leader[0]:
            own = [m for m in direct if code in m.codes]
            if own and all(any(_overlaps(m, e) for e in leader[1][1]) for m in own):
                weights[code] = score * _EXPLAINED_WEIGHT
    total = sum(weights.values())
    results = []
    for code, (score, evidence, point) in scored.items():
        share = weights[code] / total if total else 0.0
        final = score * (0.55 + 0.45 * share)
        if final < 0.05:
            continue
        match = index.by_kelurahan_code(code)
        if match is None:  # codes above come from the same index; keeps mypy honest
            continue
        spans = sorted({(m.start, m.end) for m in evidence})
        results.append(
            LocationSuggestion(
                kelurahan=match.kelurahan,
                kecamatan=match.kecamatan,
                kota=match.kota,
                lat=point[0] if point else None,
                lon=point[1] if point else None,
                confidence=round(max(0.0, min(1.0, final)), 3),
                evidence=", ".join(text[s:e] for s, e in spans),
            )
        )
    results.sort(key=lambda s: (-s.confidence, s.kelurahan.code))
    return results[:limit]
