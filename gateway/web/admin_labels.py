"""Human words for what the store keeps as codes, for the /admin pages (Bahasa Indonesia):
queue owners (`kelurahan:31.71.06.1001` → "Kel. Menteng, Kec. Menteng"), category sources,
and each history entry as a sentence."""

from __future__ import annotations

from collections.abc import Mapping

from normalizers.category import Taxonomy
from normalizers.geo import AreaIndex
from normalizers.report import AreaRef, HistoryEntry

REJECT_LABELS = {
    "spam": "Spam",
    "duplicate": "Duplikat",
    "not_a_complaint": "Bukan pengaduan",
    "out_of_scope": "Di luar kewenangan",
    "automated": "Pesan otomatis",
    "empty": "Pesan kosong",
}
CATEGORY_SOURCES = {
    "rules": "tebakan kata kunci",
    "model": "tebakan model dari keputusan admin",
    "admin": "dipilih admin",
}
NON_GEO = {
    "no_location": "tanpa lokasi, masuk antrean untuk dilengkapi",
    "out_of_area": "titik di luar DKI Jakarta, masuk antrean untuk dilengkapi",
}
# Changes of an admin's "enriched" entry, in the order they are told.
CHANGED_FIELDS = {
    "address": "alamat",
    "description": "uraian untuk CRM",
    "reporter": "data pelapor",
    "attention": "tanda perhatian",
}
# Notes the CRM dispatcher, conversations and erasure write, by their first words.
SYSTEM_NOTES = (
    ("accepted, token", "diterima CRM, menunggu nomor laporan"),
    ("sent to the CRM again", "dikirim ulang ke CRM"),
    ("personal data erased", "data pribadi pelapor dihapus"),
    ("e-mail reply", "balasan e-mail warga"),
    ("reaction", "reaksi warga pada pesan"),
    ("the citizen unsent", "warga menarik kembali pesannya"),
    ("message", "pesan susulan warga"),
)


class Labels:
    """Names of owners, categories and history entries, from the areas, offices and
    taxonomy this kanal runs with."""

    def __init__(self, areas: AreaIndex, offices: Mapping[str, str], taxonomy: Taxonomy):
        self.areas = areas
        self.offices = dict(offices)
        self.taxonomy = taxonomy

    def kelurahan(self, code: str) -> str:
        match = self.areas.by_kelurahan_code(code)
        if match is None:
            return f"kelurahan {code}"
        return f"Kel. {match.kelurahan.name}, Kec. {match.kecamatan.name}"

    @staticmethod
    def place(kelurahan: AreaRef, kecamatan: AreaRef | None, kota: AreaRef | None) -> str:
        """ "Kel. Menteng, Kec. Menteng, Kota Administrasi Jakarta Pusat"."""
        parts = [f"Kel. {kelurahan.name}"]
        if kecamatan is not None:
            parts.append(f"Kec. {kecamatan.name}")
        if kota is not None:
            parts.append(kota.name)
        return ", ".join(parts)

    def owner(self, owner: str) -> str:
        """`province`, `kota:…`, `kecamatan:…`, `kelurahan:…` or `office:…` as a name; an
        owner that names nothing known is shown as it is."""
        if owner == "province":
            return "Pemprov DKI Jakarta"
        kind, _, code = owner.partition(":")
        if kind == "kota":
            kota = self.areas.kota(code)
            return kota.name if kota else owner
        if kind == "kecamatan":
            kecamatan = self.areas.kecamatan(code)
            return f"Kec. {kecamatan.name}" if kecamatan else owner
        if kind == "kelurahan":
            return self.kelurahan(code) if self.areas.by_kelurahan_code(code) else owner
        if kind == "office":
            return self.offices.get(code, owner)
        return owner

    def category(self, code: str) -> str:
        found = self.taxonomy.get(code)
        return found.name if found else code

    def history(self, entry: HistoryEntry) -> str:
        """What happened, as a sentence (without the time, the status or the person)."""
        note = entry.note or ""
        changes = entry.changes or {}
        if note == "claimed":
            return "mulai mengerjakan laporan"
        if note == "released":
            return "melepas laporan"
        if note == "enriched":
            told = self._enriched(changes)
            return f"melengkapi {told}" if told else "menyimpan tanpa perubahan"
        if note == "submitted":
            told = "dikirim ke CRM"
            owner = changes.get("owner")
            return f"{told}; antrean menjadi {self.owner(str(owner))}" if owner else told
        if note == "reopened":
            return "dikembalikan ke antrean"
        if note.startswith("seen: "):
            return "tanda perhatian sudah dibaca"
        if entry.status == "rejected":
            reason = str(changes.get("reason") or note)
            text = "ditolak: " + REJECT_LABELS.get(reason, reason)
            if changes.get("duplicate_of"):
                text += f" (duplikat dari laporan {changes['duplicate_of']})"
            if note and note != reason:
                text += f" · catatan: {note}"
            return text
        if entry.status == "received" and not note:
            return "pesan warga diterima"
        if note in NON_GEO:
            return NON_GEO[note]
        if note.startswith("owner "):
            return "diteruskan ke " + self.owner(note.removeprefix("owner ").split(" ")[0])
        for prefix, text in SYSTEM_NOTES:
            if note.startswith(prefix):
                return text
        return note

    def _enriched(self, changes: Mapping[str, object]) -> str:
        parts = []
        location = changes.get("location")
        if isinstance(location, dict) and location.get("kelurahan"):
            where = self.kelurahan(str(location["kelurahan"]))
            exact = "titik" if location.get("lat") is not None else "titik tengah kelurahan"
            parts.append(f"lokasi {where} ({exact})")
        if "category" in changes:
            parts.append(f"kategori {self.category(str(changes['category']))}")
        for key, label in CHANGED_FIELDS.items():
            if key in changes:
                parts.append(label)
        if "confidential" in changes:
            parts.append(
                "identitas pelapor dirahasiakan"
                if changes["confidential"]
                else "identitas pelapor tidak lagi dirahasiakan"
            )
        if "owner" in changes:
            parts.append(f"dialihkan ke {self.owner(str(changes['owner']))}")
        return "; ".join(parts)
