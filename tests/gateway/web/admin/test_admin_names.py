"""The /admin pages name things the way people do: queues are picked from a list of office
and area names (codes still work in links), a duplicate's original is its ticket, and what
kanal wrote in English for itself (history, why two reports look alike, where a location
came from) reads in Bahasa Indonesia."""

from __future__ import annotations

import re

from tests.gateway.web.admin.helpers import MENTENG, hidden, sign_in, sms_in_queue

TEXT = "Jalan berlubang besar di depan SDN 01 Kelurahan Menteng, mohon diperbaiki"
KOTA = "kota:31.71"
GONDANGDIA = "kelurahan:31.71.06.1004"


def select(html: str, name: str) -> str:
    found = re.search(rf'<select id="[^"]*" name="{name}">.*?</select>', html, re.S)
    assert found, f"no select {name}"
    return found.group(0)


async def test_the_queue_is_filtered_by_a_queue_picked_by_name_and_links_with_codes_still_work(
    make_kanal,
):
    k = await make_kanal()
    here = await sms_in_queue(k, 1, TEXT)
    there = await sms_in_queue(k, 2, "Sampah menumpuk di Gondangdia", owner=GONDANGDIA)
    await sign_in(k.client, "budi", KOTA, store=k.store)
    html = await (await k.client.get("/admin")).text()
    owners = select(html, "owner")
    assert "(kode)" not in html and 'placeholder="mis. kelurahan' not in html
    assert '<optgroup label="Kelurahan di Kec. Menteng">' in owners
    assert f'<option value="{MENTENG}">Kel. Menteng, Kec. Menteng</option>' in owners
    assert '<option value="kecamatan:31.71.06">Kec. Menteng</option>' in owners
    assert f'<option value="{KOTA}">Kota Administrasi Jakarta Pusat</option>' in owners
    # Only the queues this admin sees: no other kota's, no office's.
    assert "kota:31.74" not in owners and "office:" not in owners and "province" not in owners
    # What the select sends (a code, as a bookmark would): one queue, marked as chosen.
    html = await (await k.client.get(f"/admin?owner={MENTENG}")).text()
    assert f"card-{here}" in html and f"card-{there}" not in html
    assert f'<option value="{MENTENG}" selected>' in select(html, "owner")
    # A code from an old link outside the list is still named, not shown raw.
    html = await (await k.client.get("/admin?owner=office:inspektorat")).text()
    assert '<option value="office:inspektorat" selected>Inspektorat Provinsi DKI Jakarta<' in html


async def test_a_report_is_handed_over_to_a_queue_picked_by_name(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    page = await (await k.client.get(f"/admin/reports/{report_id}")).text()
    owners = select(page, "owner")
    assert owners.count("selected") == 1 and '<option value="" selected>' in owners
    assert '<option value="office:inspektorat">Inspektorat Provinsi DKI Jakarta</option>' in owners
    assert (
        '<option value="kelurahan:31.71.06.1004">Kel. Gondangdia, Kec. Menteng</option>' in owners
    )
    assert f'value="{MENTENG}"' not in owners  # not to the queue it is in
    assert 'placeholder="mis. kota' not in page
    r = await k.client.post(
        f"/admin/reports/{report_id}/enrich",
        data={"csrf": csrf, "version": hidden(page, "version"), "owner": "office:inspektorat"},
        allow_redirects=False,
    )
    assert r.status == 303 and r.headers["Location"].startswith("/admin?ok=handed")
    assert (await k.store.get_report(report_id)).owner == "office:inspektorat"


async def test_a_duplicate_is_rejected_by_the_originals_ticket_and_linked_by_it(make_kanal):
    k = await make_kanal()
    first = await sms_in_queue(k, 1, TEXT, at="07:00")
    again = await sms_in_queue(k, 2, f"Ulang: {TEXT}", at="08:00")
    original = await k.store.get_report(first)
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    page = await (await k.client.get(f"/admin/reports/{again}")).text()
    assert "Duplikat dari (nomor tiket)" in page
    r = await k.client.post(
        f"/admin/reports/{again}/reject",
        data={
            "csrf": csrf,
            "version": hidden(page, "version"),
            "reason": "duplicate",
            "duplicate_of": f" {original.ticket.lower()} ",
        },
    )
    assert r.status == 200
    page = await r.text()
    assert (await k.store.get_report(again)).duplicate_of == first
    link = f'<a href="/admin/reports/{first}">{original.ticket}</a>'
    assert f"duplikat dari {link}" in page  # under "Ditolak" and in the history
    history = re.search(r'<ol class="history">.*?</ol>', page, re.S).group(0)
    assert f"ana: ditolak: Duplikat (duplikat dari {link})" in history
    assert f">{first}<" not in page
    # A ticket that names nothing in this admin's queues rejects nothing.
    other = await sms_in_queue(k, 3, "promo pulsa murah")
    page = await (await k.client.get(f"/admin/reports/{other}")).text()
    r = await k.client.post(
        f"/admin/reports/{other}/reject",
        data={
            "csrf": csrf,
            "version": hidden(page, "version"),
            "reason": "duplicate",
            "duplicate_of": "KNL-0000-0000",
        },
    )
    assert "Laporan asli tidak ditemukan di wilayah Anda" in await r.text()
    assert (await k.store.get_report(other)).status == "pending_enrichment"


def test_what_kanal_wrote_for_itself_reads_in_bahasa_indonesia():
    from datetime import UTC, datetime

    from gateway.base.config import DEFAULT_OFFICES
    from gateway.web.admin_labels import Labels
    from normalizers.category import default_taxonomy
    from normalizers.geo import default_index
    from normalizers.report import HistoryEntry

    labels = Labels(default_index(), DEFAULT_OFFICES, default_taxonomy())
    at = datetime(2026, 11, 27, tzinfo=UTC)

    def told(note, by="system", status="pending_enrichment", changes=None):  # type: ignore[no-untyped-def]
        return labels.history(HistoryEntry(at=at, status=status, by=by, note=note, changes=changes))

    assert labels.duplicate_why("same reporter, same text") == "pelapor sama, teks sama"
    assert labels.duplicate_why("same reporter, near-identical text (85% same words)") == (
        "pelapor sama, teks hampir sama (85% kata sama)"
    )
    assert labels.duplicate_why("same category within 120 m and 5 h") == (
        "kategori sama dalam jarak 120 m dan 5 jam"
    )
    assert labels.duplicate_why(
        "its ticket KNL-AB12-CD34 is in the subject, from another sender"
    ) == ("nomor tiketnya KNL-AB12-CD34 ada di subjek e-mail, dari pengirim lain")
    assert labels.evidence("EXIF GPS of attachment 0") == "GPS foto lampiran ke-1"
    assert labels.evidence("Kelurahan Menteng") == "kata “Kelurahan Menteng”"
    assert told("location suggested from the EXIF GPS of attachment 1", by="media") == (
        "saran lokasi dari GPS foto lampiran ke-2"
    )
    assert told("owner kelurahan:31.71.06.1001 (location from the EXIF GPS of attachment 0)") == (
        "diteruskan ke Kel. Menteng, Kec. Menteng (lokasi dari GPS foto lampiran ke-1)"
    )
    assert told("attachment 0 stored (image/jpeg, 1234 bytes)", "media", "attachment") == (
        "lampiran ke-1 tersimpan"
    )
    assert told("attachment 2 unavailable: HTTP 404", "media", "attachment") == (
        "lampiran ke-3 tidak dapat diambil"
    )
    assert told("no text, no attachment, no location", status="rejected") == (
        "ditolak otomatis: Pesan kosong"
    )
    assert told("auto-submitted header", status="rejected") == "ditolak otomatis: Pesan otomatis"
    assert told("timeout after 30 s", "crm", "failed") == (
        "gagal dikirim ke CRM (keterangan teknis: timeout after 30 s)"
    )
    assert told("service_request_id 123; x", "crm", "posted") == "diterima CRM, nomor 123"
    assert [labels.actor(by) for by in ("system", "media", "crm", "notify", "ana")] == [
        "kanal",
        "kanal (lampiran)",
        "CRM",
        "kanal (pemberitahuan)",
        "ana",
    ]


async def test_a_refused_rejection_is_told_in_bahasa_indonesia(make_kanal):
    k = await make_kanal()
    first = await sms_in_queue(k, 1, TEXT, at="07:00")
    report_id = await sms_in_queue(k, 2, "promo pulsa murah", at="08:00")
    ticket = (await k.store.get_report(first)).ticket
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    told = []
    for fields in (
        {"reason": "duplicate"},
        {"reason": "spam", "duplicate_of": ticket},
        {"reason": "spam", "note": "x" * 1001},
    ):
        page = await (await k.client.get(f"/admin/reports/{report_id}")).text()
        r = await k.client.post(
            f"/admin/reports/{report_id}/reject",
            data={"csrf": csrf, "version": hidden(page, "version"), **fields},
        )
        told.append(re.search(r'id="message">([^<]*)<', await r.text()).group(1))
    assert told == [
        "Alasan Duplikat perlu nomor tiket laporan aslinya.",
        "Nomor tiket laporan asli hanya diisi bila alasannya Duplikat.",
        "Isian catatan tidak valid; tidak ada yang diubah.",
    ]
    assert (await k.store.get_report(report_id)).status == "pending_enrichment"
