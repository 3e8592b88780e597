"""Text clean-up for storage and Indonesian slang normalization for matching.

`clean_text` is what kanal may store next to the citizen's words (safe, bounded);
`normalize_for_matching` is only for classifiers and lookups, never shown or stored.
"""

from __future__ import annotations

import functools
import re
import unicodedata

MAX_TEXT_CHARS = 10_000

# Control characters except \n and \t; \r is folded into \n first.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """NFC, no control characters, runs of spaces collapsed, newlines kept, length capped."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return text[:max_chars]


# Informal spellings seen in SMS and social media, mapped to the word a keyword list uses.
SLANG: dict[str, str] = {
    "gk": "tidak",
    "ga": "tidak",
    "gak": "tidak",
    "nggak": "tidak",
    "ngga": "tidak",
    "enggak": "tidak",
    "engga": "tidak",
    "g": "tidak",
    "tdk": "tidak",
    "tak": "tidak",
    "kagak": "tidak",
    "ndak": "tidak",
    "gaada": "tidak ada",
    "gada": "tidak ada",
    "jln": "jalan",
    "jl": "jalan",
    "jalan2": "jalan",
    "blm": "belum",
    "blom": "belum",
    "sdh": "sudah",
    "udh": "sudah",
    "udah": "sudah",
    "dah": "sudah",
    "yg": "yang",
    "dgn": "dengan",
    "dg": "dengan",
    "sm": "sama",
    "utk": "untuk",
    "untk": "untuk",
    "krn": "karena",
    "krna": "karena",
    "karna": "karena",
    "tp": "tapi",
    "tpi": "tapi",
    "dr": "dari",
    "dri": "dari",
    "dlm": "dalam",
    "bgt": "banget",
    "bngt": "banget",
    "sy": "saya",
    "sya": "saya",
    "gw": "saya",
    "gue": "saya",
    "aku": "saya",
    "kmrn": "kemarin",
    "kmren": "kemarin",
    "skrg": "sekarang",
    "skrng": "sekarang",
    "org": "orang",
    "orng": "orang",
    "bnyk": "banyak",
    "byk": "banyak",
    "lg": "lagi",
    "lgi": "lagi",
    "jg": "juga",
    "jga": "juga",
    "aja": "saja",
    "aj": "saja",
    "bs": "bisa",
    "bsa": "bisa",
    "msh": "masih",
    "masi": "masih",
    "kl": "kalau",
    "klo": "kalau",
    "kalo": "kalau",
    "sampe": "sampai",
    "ampe": "sampai",
    "pd": "pada",
    "tlg": "tolong",
    "tolongin": "tolong",
    "mhn": "mohon",
    "trims": "terima kasih",
    "makasih": "terima kasih",
    "mksh": "terima kasih",
    "tks": "terima kasih",
    "thx": "terima kasih",
    "kel": "kelurahan",
    "kec": "kecamatan",
    "mampet": "mampet",
    "jkt": "jakarta",
    "pju": "pju",
    "bolong": "berlubang",
    "bolong2": "berlubang",
    "lubang2": "lubang",
    "ancur": "hancur",
    "rusak2": "rusak",
    "dpn": "depan",
    "blkg": "belakang",
    "sblh": "sebelah",
    "dkt": "dekat",
    "deket": "dekat",
    "bbrp": "beberapa",
    "hr": "hari",
    "hri": "hari",
    "bln": "bulan",
    "thn": "tahun",
    "mlm": "malam",
    "pgi": "pagi",
    "jam2": "jam",
    "ortu": "orang tua",
    "sklh": "sekolah",
    "bpk": "bapak",
    "pak": "bapak",
    "bu": "ibu",
    "min": "admin",
    "mimin": "admin",
    "gmn": "bagaimana",
    "gimana": "bagaimana",
    "knp": "kenapa",
    "napa": "kenapa",
    "kpn": "kapan",
    "dmn": "dimana",
    "mana": "mana",
    "bener": "benar",
    "bnr": "benar",
    "ttg": "tentang",
    "spt": "seperti",
    "kyk": "seperti",
    "kayak": "seperti",
    "pdhl": "padahal",
    "trs": "terus",
    "trus": "terus",
    "smp": "sampai",
}

_WORD = re.compile(r"[a-z0-9]+")
# "bangeeet" → "banget", "tolooong" → "tolong": three or more repeats become one.
_ELONGATED = re.compile(r"([a-z])\1{2,}")
# "jalan2" / "anak2" (reduplication written with a digit) → the base word.
_REDUP = re.compile(r"\b([a-z]{3,})2\b")


# build_report asks for the same text three times (keyword rules, noise, the learned model).
@functools.lru_cache(maxsize=64)
def normalize_for_matching(text: str) -> str:
    """Lower-case ASCII words with slang expanded, joined by single spaces."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKD", text[:MAX_TEXT_CHARS])
    folded = folded.encode("ascii", "ignore").decode().lower()
    folded = _ELONGATED.sub(r"\1", folded)
    folded = _REDUP.sub(r"\1", folded)
    words = [SLANG.get(word, word) for word in _WORD.findall(folded)]
    return " ".join(words)


# Words of hello alone ("halo min", "selamat pagi", "assalamualaikum", "/start"): not a report.
_GREETING_WORDS = frozenset(
    "halo hallo helo hello hai hay hi hei hey pagi siang sore malam selamat met permisi "
    "assalamualaikum assalamu alaikum salam wr wb min mimin admin kak pak bu bapak ibu "
    "sis gan dong ya tes test start mulai p".split()
)
_GREETING_OPENERS = frozenset(
    "halo hallo helo hello hai hay hi hei hey selamat permisi assalamualaikum assalamu "
    "salam tes test start mulai p pagi siang sore malam".split()
)


def is_greeting(text: str) -> bool:
    """A few words of hello and nothing else (at most six words, all greeting words)."""
    words = _WORD.findall(normalize_for_matching(text.replace("/start", "start")))
    return (
        0 < len(words) <= 6
        and words[0] in _GREETING_OPENERS
        and all(w in _GREETING_WORDS for w in words)
    )
