"""Human words for what the store keeps as codes, for the /admin pages (Bahasa Indonesia):
queue owners (`kelurahan:31.71.06.1001` → "Kel. Menteng, Kec. Menteng") and the lists to
pick one from, category sources, who wrote a history entry and each entry as a sentence,
why kanal thinks a report repeats another and where a location suggestion came from."""

from __future__ import annotations

import re
from collections.abc import Mapping

from gateway.store.scope import scope_contains
from normalizers.category import Taxonomy
from normalizers.geo import AreaIndex
from normalizers.report import AreaRef, HistoryEntry

# A named group of owners to pick from (an <optgroup>): its label and (code, name) pairs.
OwnerGroup = tuple[str, list[tuple[str, str]]]

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
    ("citizen wrote again after done", "warga menulis lagi setelah laporan selesai"),
    ("[erased]", "catatan dihapus bersama data pribadi"),
)
# Who wrote an entry, when it was not a person.
ACTORS = {
    "system": "kanal",
    "media": "kanal (lampiran)",
    "crm": "CRM",
    "notify": "kanal (pemberitahuan)",
}
_ATTACHMENT_NOTE = re.compile(r"attachment (\d+) (stored|unavailable)")
_EXIF = re.compile(r"EXIF GPS of attachment (\d+)")
_SAME_WORDS = re.compile(r"same reporter, near-identical text \((\d+)% same words\)")
_NEARBY = re.compile(r"same category within (\d+) m and (\d+) h")
_TICKET_IN_SUBJECT = re.compile(r"its ticket (\S+) is in the subject")


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

    def owner_groups(self, scope: str) -> list[OwnerGroup]:
        """Every owner `scope` may see, named and grouped: Pemprov, offices, kota, then each
        kota's kecamatan and each kecamatan's kelurahan (what a select offers instead of
        codes)."""
        groups: list[OwnerGroup] = []

        def add(label: str, owners: list[tuple[str, str]]) -> None:
            seen = [(code, name) for code, name in owners if scope_contains(scope, code)]
            if seen:
                groups.append((label, seen))

        add("Provinsi", [("province", self.owner("province"))])
        offices = sorted(self.offices.items(), key=lambda office: office[1])
        add("Kantor", [(f"office:{code}", name) for code, name in offices])
        matches = sorted(
            self.areas.kelurahan_matches,
            key=lambda m: (m.kota.code, m.kecamatan.name, m.kelurahan.name),
        )
        kota = list(dict.fromkeys(m.kota for m in matches))
        add("Kota administrasi", [(f"kota:{k.code}", k.name) for k in kota])
        for k in kota:
            kecamatan = list(dict.fromkeys(m.kecamatan for m in matches if m.kota == k))
            add(
                f"Kecamatan di {k.name}",
                [(f"kecamatan:{c.code}", f"Kec. {c.name}") for c in kecamatan],
            )
        by_kecamatan: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for m in matches:
            by_kecamatan.setdefault((m.kecamatan.name, m.kecamatan.code), []).append(
                (f"kelurahan:{m.kelurahan.code}", self.kelurahan(m.kelurahan.code))
            )
        for (name, _), kelurahan in by_kecamatan.items():
            add(f"Kelurahan di Kec. {name}", kelurahan)
        return groups

    def actor(self, by: str) -> str:
        """Who wrote a history entry: a person's name, or what part of kanal."""
        return ACTORS.get(by, by)

    @staticmethod
    def duplicate_why(why: str) -> str:
        """Why kanal thinks a report repeats another, told in Bahasa Indonesia."""
        told = why
        for pattern, text in (
            (_SAME_WORDS, "pelapor sama, teks hampir sama ({0}% kata sama)"),
            (_NEARBY, "kategori sama dalam jarak {0} m dan {1} jam"),
            (_TICKET_IN_SUBJECT, "nomor tiketnya {0} ada di subjek e-mail"),
        ):
            found = pattern.search(told)
            if found:
                told = told.replace(found.group(0), text.format(*found.groups()))
        for english, bahasa in (
            ("same reporter, same text", "pelapor sama, teks sama"),
            ("a reply to that report's mail", "balasan atas e-mail laporan itu"),
            (", from another sender", ", dari pengirim lain"),
        ):
            told = told.replace(english, bahasa)
        return told

    @staticmethod
    def evidence(evidence: str) -> str:
        """Where a location suggestion came from: the citizen's words as they are, a photo's
        GPS as words."""
        found = _EXIF.fullmatch(evidence)
        if found:
            return f"GPS foto lampiran ke-{int(found.group(1)) + 1}"
        return f"kata “{evidence}”"

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
            return self._rejected(entry, note, changes)
        if entry.status == "received" and not note:
            return "pesan warga diterima"
        if note in NON_GEO:
            return NON_GEO[note]
        if note.startswith("owner "):
            owner, _, why = note.removeprefix("owner ").partition(" ")
            told = "diteruskan ke " + self.owner(owner)
            photo = _EXIF.search(why)
            if "later message" in why:
                told += " (lokasi dari pesan berikutnya)"
            elif photo:
                told += f" (lokasi dari {self.evidence(photo.group(0))})"
            return told
        if note.startswith("location suggested from the "):
            return "saran lokasi dari " + self.evidence(
                note.removeprefix("location suggested from the ")
            )
        attachment = _ATTACHMENT_NOTE.match(note)
        if attachment:
            n, state = int(attachment.group(1)) + 1, attachment.group(2)
            return f"lampiran ke-{n} " + (
                "tersimpan" if state == "stored" else "tidak dapat diambil"
            )
        if entry.status == "failed":
            return (
                f"gagal dikirim ke CRM (keterangan teknis: {note})"
                if note
                else "gagal dikirim ke CRM"
            )
        if note.startswith("service_request_id "):
            return "diterima CRM, nomor " + note.split(" ")[1].rstrip(";")
        if entry.by == "crm" and "crm_status" in changes:
            told = f"status di CRM: {changes['crm_status']}"
            return f"{told} · {note}" if note else told
        for prefix, text in SYSTEM_NOTES:
            if note.startswith(prefix):
                return text
        return note

    def _rejected(self, entry: HistoryEntry, note: str, changes: Mapping[str, object]) -> str:
        """A rejection: the reason's name and the admin's note; the original of a duplicate
        is linked by the page (it knows the ticket)."""
        if not changes and entry.by == "system":  # kanal's own, at intake
            reason = "empty" if note.startswith("no text") else "automated"
            return "ditolak otomatis: " + REJECT_LABELS[reason]
        reason = str(changes.get("reason") or note)
        text = "ditolak: " + REJECT_LABELS.get(reason, reason)
        if note and note != reason:
            text += f" · catatan: {note}"
        return text

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
