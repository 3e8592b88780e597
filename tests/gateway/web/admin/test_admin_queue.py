"""The /admin queue built for speed, as plain HTTP (no script): cards with kanal's location
and category and why, "Terima & kirim" in one POST, bulk rejection with one chosen reason
inside the admin's scope, duplicates grouped under their first report, human labels, and
post/redirect/get for every outcome."""

from __future__ import annotations

import re

from tests.gateway.web.admin.helpers import (
    MENTENG,
    hidden,
    second_client,
    sign_in,
    sms_in_queue,
)

TEXT = "Jalan berlubang besar di depan SDN 01 Kelurahan Menteng, mohon diperbaiki"
VAGUE = "halo apa kabar semuanya"
TEBET = "kelurahan:31.74.01.1001"


def card(html: str, report_id: str) -> str:
    """The HTML of one top-level queue card."""
    found = re.search(rf'<li class="card item[^"]*" id="card-{report_id}".*?\n  </li>', html, re.S)
    assert found, f"no card for {report_id}"
    return found.group(0)


def take_form(card_html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="[^"]*/take".*?</form>', card_html, re.S)
    assert form, "no Terima & kirim form"
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))


async def test_a_card_shows_kanals_location_and_category_with_why_and_the_reporters_others(
    make_kanal,
):
    k = await make_kanal()
    first = await sms_in_queue(k, 1, TEXT)
    second = await sms_in_queue(k, 2, VAGUE)  # the same phone number
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    html = await (await k.client.get("/admin")).text()
    one = card(html, first)
    assert "Kel. Menteng, Kec. Menteng, Kota Administrasi Jakarta Pusat" in one
    assert re.search(r"saran kanal \d+% · dari kata “Kelurahan Menteng”", one)
    assert re.search(r"Jalan .*Dinas Bina Marga.*tebakan kata kunci \d+%", one)
    assert '<span class="chip">SMS</span>' in one and re.search(r'class="age"[^>]*>\d+ hari<', one)
    assert f'href="/admin/reports/{second}"' in one  # the reporter's other open report
    assert "Terima &amp; kirim" in one
    assert MENTENG not in html.replace('placeholder="mis. kelurahan:31.71.06.1001"', "")
    other = card(html, second)
    assert "Belum ada saran lokasi dan kategori" in other and "/take" not in other
    assert "Buka &amp; lengkapi" in other
    # The keys are listed on the page (shown by its script).
    assert "<kbd>a</kbd>" in html and "<kbd>j</kbd>" in html and "admin_queue.js" in html


async def test_terima_dan_kirim_applies_the_top_location_and_submits_in_one_post(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    html = await (await k.client.get("/admin?channel=sms")).text()
    fields = take_form(card(html, report_id))
    assert fields["kelurahan_code"] == "31.71.06.1001" and fields["back"] == "channel=sms"
    r = await k.client.post(f"/admin/reports/{report_id}/take", data=fields, allow_redirects=False)
    assert r.status == 303, await r.text()
    assert r.headers["Location"].startswith("/admin?ok=submitted&ticket=KNL-")
    assert r.headers["Location"].endswith("&channel=sms")
    report = await k.store.get_report(report_id)
    assert report.status == "ready" and report.owner == MENTENG
    assert report.location.kelurahan.code == "31.71.06.1001" and report.location.lat is not None
    assert report.category.code == "jalan"
    assert [h.note for h in report.history if h.by == "ana"] == ["enriched", "submitted"]
    decisions = {(d["kind"], d["label"]) for d in await k.store.report_decisions(report_id)}
    assert {("location", "31.71.06.1001"), ("category", "jalan")} <= decisions
    queue = await (await k.client.get(r.headers["Location"])).text()
    assert "dikirim ke CRM" in queue and f"card-{report_id}" not in queue


async def test_a_stale_card_is_not_submitted_and_the_error_page_does_not_post_again(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    fields = take_form(card(await (await k.client.get("/admin")).text(), report_id))
    # Someone else changes the report after the queue was read.
    await k.store.update_report(
        report_id, lambda r: r.model_copy(update={"description": "lain", "history": []})
    )
    r = await k.client.post(f"/admin/reports/{report_id}/take", data=fields, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/admin?"
    shown = await (await k.client.get(r.headers["Location"])).text()
    assert "sudah diubah orang lain" in shown
    reloaded = await (await k.client.get(r.headers["Location"])).text()
    assert "sudah diubah orang lain" not in reloaded
    assert (await k.store.get_report(report_id)).status == "pending_enrichment"


async def test_a_card_with_a_location_already_chosen_is_sent_with_one_kirim(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    page = await (await k.client.get(f"/admin/reports/{report_id}")).text()
    r = await k.client.post(
        f"/admin/reports/{report_id}/accept",
        data={"csrf": csrf, "version": hidden(page, "version"), "kelurahan_code": "31.71.06.1001"},
        allow_redirects=False,
    )
    assert r.status == 303
    one = card(await (await k.client.get("/admin")).text(), report_id)
    assert "✓ sudah dipilih" in one and 'data-keys="a s">Kirim<' in one
    fields = take_form(one)
    assert "kelurahan_code" not in fields
    r = await k.client.post(f"/admin/reports/{report_id}/take", data=fields)
    assert r.status == 200
    assert (await k.store.get_report(report_id)).status == "ready"


async def test_bulk_reject_needs_a_chosen_reason_and_stays_inside_the_scope(make_kanal):
    k = await make_kanal()
    spam = [await sms_in_queue(k, n, f"promo pulsa murah nomor {n}") for n in (1, 2)]
    elsewhere = await sms_in_queue(k, 3, "Sampah menumpuk di Tebet Timur", owner=TEBET)
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    html = await (await k.client.get("/admin")).text()
    bulk = re.search(r'<form id="bulk".*?</form>', html, re.S).group(0)
    assert '<option value="" selected>— pilih alasan —</option>' in bulk and "required" in bulk
    versions = {i: hidden(html, f"version:{i}") for i in spam}
    chosen = [("csrf", csrf), ("back", "")] + [("id", i) for i in spam]
    chosen += [(f"version:{i}", v) for i, v in versions.items()]

    r = await k.client.post("/admin/reject", data=chosen, allow_redirects=False)
    assert r.status == 303
    assert "Pilih alasan penolakan" in await (await k.client.get(r.headers["Location"])).text()
    assert {(await k.store.get_report(i)).status for i in spam} == {"pending_enrichment"}

    # A kelurahan admin cannot reach a report of another kelurahan by naming its id.
    chosen += [("id", elsewhere), (f"version:{elsewhere}", "2"), ("reason", "spam")]
    r = await k.client.post("/admin/reject", data=chosen, allow_redirects=False)
    summary = await (await k.client.get(r.headers["Location"])).text()
    assert "2 laporan ditolak (Spam)" in summary
    assert "1 tidak ditemukan di wilayah Anda" in summary and "Tebet" not in summary
    for i in spam:
        report = await k.store.get_report(i)
        assert report.status == "rejected" and report.rejection["reason"] == "spam"
        assert [h.by for h in report.history][-1] == "ana"
    assert (await k.store.get_report(elsewhere)).status == "pending_enrichment"


async def test_bulk_reject_checks_each_reports_version(make_kanal):
    k = await make_kanal()
    fresh = await sms_in_queue(k, 1, "promo pulsa murah satu")
    stale = await sms_in_queue(k, 2, "promo pulsa murah dua")
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    html = await (await k.client.get("/admin")).text()
    form = [("csrf", csrf), ("reason", "not_a_complaint"), ("id", fresh), ("id", stale)]
    form += [(f"version:{i}", hidden(html, f"version:{i}")) for i in (fresh, stale)]
    await k.store.update_report(
        stale, lambda r: r.model_copy(update={"description": "diubah", "history": []})
    )
    r = await k.client.post("/admin/reject", data=form)
    text = await r.text()
    assert "1 laporan ditolak (Bukan pengaduan)" in text
    ticket = (await k.store.get_report(stale)).ticket
    assert f"{ticket} (diubah orang lain sejak antrean dimuat)" in text
    assert (await k.store.get_report(fresh)).status == "rejected"
    assert (await k.store.get_report(stale)).status == "pending_enrichment"


async def test_likely_duplicates_are_grouped_under_their_first_report_and_rejected_at_once(
    make_kanal,
):
    from normalizers.report import DuplicateSuggestion

    k = await make_kanal()
    first = await sms_in_queue(k, 1, TEXT, at="07:00")
    again = [await sms_in_queue(k, n, f"Ulang {n}: {TEXT}", at=f"0{n + 6}:00") for n in (2, 3)]
    head = await k.store.get_report(first)
    for n, report_id in enumerate(again):
        # The second repeats the first; the third repeats the second (a chain).
        original = head if n == 0 else await k.store.get_report(again[0])
        suggestion = DuplicateSuggestion(id=original.id, ticket=original.ticket, why="teks sama")

        def suggest(r, s=suggestion):  # type: ignore[no-untyped-def]
            r.suggestions.duplicate_of = [s]
            return r.model_copy(update={"history": []})

        await k.store.update_report(report_id, suggest)
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    html = await (await k.client.get("/admin")).text()
    group = card(html, first)
    assert "Kemungkinan duplikat laporan ini (2)" in group
    assert all(f'href="/admin/reports/{i}"' in group for i in again)
    assert all(f'id="card-{i}"' not in html for i in again)
    form = re.search(r'<form method="post" action="/admin/reject".*?</form>', group, re.S)
    fields = re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0))
    assert ("duplicate_of", first) in fields and ("reason", "duplicate") in fields
    r = await k.client.post("/admin/reject", data=fields)
    assert "2 laporan ditolak (Duplikat)" in await r.text()
    for report_id in again:
        report = await k.store.get_report(report_id)
        assert report.status == "rejected" and report.duplicate_of == first
    assert (await k.store.get_report(first)).status == "pending_enrichment"


async def test_the_report_page_speaks_in_names_marks_the_chosen_and_asks_for_a_reason(
    make_kanal,
):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    page = await (await k.client.get(f"/admin/reports/{report_id}")).text()
    # The rules' category is already set: told as set, not offered as a new suggestion.
    assert "Pakai kategori" not in page and "✓ Terpasang</span> Jalan" in page
    assert "antrean Kel. Menteng, Kec. Menteng" in page
    r = await k.client.post(
        f"/admin/reports/{report_id}/accept",
        data={"csrf": csrf, "version": hidden(page, "version"), "kelurahan_code": "31.71.06.1001"},
    )
    page = await r.text()
    assert "✓ Dipilih</span> lokasi laporan ini sekarang" in page
    assert "Pakai lokasi Kel. Menteng" not in page
    history = re.search(r'<ol class="history">.*?</ol>', page, re.S).group(0)
    assert "ana: melengkapi lokasi Kel. Menteng, Kec. Menteng (titik tengah kelurahan)" in history
    assert "kanal: pesan warga diterima" in history
    assert "enriched" not in history and "no_location" not in history
    # No reason chosen: nothing rejected, and the refusal is told once after a redirect.
    reject = re.search(r'<select id="reason" name="reason" required>(.*?)</select>', page, re.S)
    assert reject and reject.group(1).startswith('<option value="" selected>')
    r = await k.client.post(
        f"/admin/reports/{report_id}/reject",
        data={"csrf": csrf, "version": hidden(page, "version"), "reason": ""},
        allow_redirects=False,
    )
    assert r.status == 303
    assert "Pilih alasan penolakan" in await (await k.client.get(r.headers["Location"])).text()
    assert (await k.store.get_report(report_id)).status == "pending_enrichment"


async def test_offices_and_areas_are_named_in_the_navigation(make_kanal):
    k = await make_kanal()
    await sign_in(k.client, "ina", "office:inspektorat", store=k.store)
    html = await (await k.client.get("/admin")).text()
    assert "Inspektorat Provinsi DKI Jakarta" in html and "office:inspektorat" not in html


async def test_the_front_page_leads_to_signin_and_to_tracking_a_ticket(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    ticket = (await k.store.get_report(report_id)).ticket
    home = await k.client.get("/")
    html = await home.text()
    assert home.status == 200
    assert 'href="/signin"' in html and 'action="/track"' in html and 'name="ticket"' in html
    r = await k.client.get(f"/track?ticket=+{ticket.lower()}+", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/track/{ticket}"
    page = await k.client.get(r.headers["Location"])
    assert page.status == 200 and ticket in await page.text()
    r = await k.client.get("/track?ticket=%3Cscript%3E")
    assert r.status == 400 and "<script>" not in await r.text()


async def test_a_confidential_report_is_linked_to_no_other_report_below_the_province(
    make_kanal,
):
    k = await make_kanal()
    secret = await sms_in_queue(k, 1, TEXT)
    other = await sms_in_queue(k, 2, VAGUE)  # the same phone number
    await k.store.update_report(
        secret, lambda r: r.model_copy(update={"confidential": True, "history": []})
    )
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    html = await (await k.client.get("/admin")).text()
    assert f'href="/admin/reports/{other}"' not in card(html, secret)
    assert f'href="/admin/reports/{secret}"' not in card(html, other)
    page = await (await k.client.get(f"/admin/reports/{secret}")).text()
    assert 'id="others"' not in page
    # The province sees who sent what, and the links.
    client = await second_client(k)
    try:
        await sign_in(client, "prov", "province", store=k.store)
        html = await (await client.get("/admin")).text()
        assert f'href="/admin/reports/{other}"' in card(html, secret)
    finally:
        await client.close()


async def test_viewers_and_other_kelurahan_cannot_take_or_reject_from_the_queue(make_kanal):
    k = await make_kanal()
    mine = await sms_in_queue(k, 1, TEXT)
    elsewhere = await sms_in_queue(k, 2, "Sampah menumpuk di Tebet Timur", owner=TEBET)
    csrf = await sign_in(k.client, "vera", MENTENG, role="viewer", store=k.store)
    html = await (await k.client.get("/admin")).text()
    assert "/take" not in html and 'id="bulk"' not in html
    version = str((await k.store.get_report(mine)).version)
    r = await k.client.post(
        f"/admin/reports/{mine}/take",
        data={"csrf": csrf, "version": version, "kelurahan_code": "31.71.06.1001"},
    )
    assert r.status == 403
    r = await k.client.post("/admin/reject", data={"csrf": csrf, "id": mine, "reason": "spam"})
    assert r.status == 403
    assert (await k.store.get_report(mine)).status == "pending_enrichment"

    other = await second_client(k)
    try:
        csrf = await sign_in(other, "ana", MENTENG, store=k.store)
        before = await k.store.get_report(elsewhere)
        r = await other.post(
            f"/admin/reports/{elsewhere}/take",
            data={"csrf": csrf, "version": str(before.version), "kelurahan_code": "31.74.01.1001"},
        )
        assert "tidak ditemukan di wilayah Anda" in await r.text()
        assert (await k.store.get_report(elsewhere)).version == before.version
    finally:
        await other.close()


def test_history_entries_read_as_sentences_in_bahasa_indonesia():
    from datetime import UTC, datetime

    from gateway.base.config import DEFAULT_OFFICES
    from gateway.web.admin_labels import Labels
    from normalizers.category import default_taxonomy
    from normalizers.geo import default_index
    from normalizers.report import HistoryEntry

    labels = Labels(default_index(), DEFAULT_OFFICES, default_taxonomy())
    at = datetime(2026, 11, 27, tzinfo=UTC)

    def told(note, changes=None, status="pending_enrichment"):  # type: ignore[no-untyped-def]
        return labels.history(
            HistoryEntry(at=at, status=status, by="ana", note=note, changes=changes)
        )

    assert told("enriched", {"category": "jalan", "owner": "office:inspektorat"}) == (
        "melengkapi kategori Jalan; dialihkan ke Inspektorat Provinsi DKI Jakarta"
    )
    assert told("enriched", {}) == "menyimpan tanpa perubahan"
    assert told("submitted", {"owner": MENTENG}, "ready") == (
        "dikirim ke CRM; antrean menjadi Kel. Menteng, Kec. Menteng"
    )
    assert told("spam", {"reason": "spam"}, "rejected") == "ditolak: Spam"
    assert told("owner kota:31.71", None, "ready") == (
        "diteruskan ke Kota Administrasi Jakarta Pusat"
    )
    assert labels.owner("kecamatan:31.71.06") == "Kec. Menteng"
    assert labels.owner("office:balai_kota") == "Balai Kota (pendopo)"
    assert labels.owner("kelurahan:99.99.99.9999") == "kelurahan:99.99.99.9999"


async def _suggest_duplicate(k, report_id: str, original_id: str) -> None:  # type: ignore[no-untyped-def]
    from normalizers.report import DuplicateSuggestion

    original = await k.store.get_report(original_id)
    suggestion = DuplicateSuggestion(id=original.id, ticket=original.ticket, why="teks sama")

    def suggest(r):  # type: ignore[no-untyped-def]
        r.suggestions.duplicate_of = [suggestion]
        return r.model_copy(update={"history": []})

    await k.store.update_report(report_id, suggest)


async def test_duplicates_of_a_report_on_an_earlier_page_are_grouped_under_a_line_naming_it(
    make_kanal,
):
    k = await make_kanal()
    first = await sms_in_queue(k, 1, TEXT, at="07:00")
    again = [await sms_in_queue(k, n, f"Ulang {n}: {TEXT}", at=f"0{n + 6}:00") for n in (2, 3)]
    await _suggest_duplicate(k, again[0], first)
    await _suggest_duplicate(k, again[1], again[0])  # a chain, through the page
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    head = await k.store.get_report(first)
    # The next page, as "Berikutnya" leads to it, were a page one report long.
    [shown], cursor = await k.store.list_reports(
        MENTENG, status=["pending_enrichment"], limit=1, oldest_first=True
    )
    assert shown.id == first and cursor
    html = await (await k.client.get("/admin", params={"cursor": cursor})).text()
    group = re.search(rf'<li class="card item group" id="group-{first}".*?\n  </li>', html, re.S)
    assert group, "no line naming the original"
    line = group.group(0)
    assert f'Kemungkinan duplikat <a href="/admin/reports/{first}">{head.ticket}</a>' in line
    assert "(menunggu dilengkapi, di halaman sebelumnya)" in line
    assert all(f'href="/admin/reports/{i}"' in line for i in again)
    assert all(f'id="card-{i}"' not in html for i in again)
    form = re.search(r'<form method="post" action="/admin/reject".*?</form>', line, re.S)
    fields = re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0))
    assert ("duplicate_of", first) in fields and [v for n, v in fields if n == "id"] == again
    r = await k.client.post("/admin/reject", data=fields)
    assert "2 laporan ditolak (Duplikat)" in await r.text()
    for report_id in again:
        report = await k.store.get_report(report_id)
        assert report.status == "rejected" and report.duplicate_of == first


async def test_duplicates_of_a_report_already_sent_are_grouped_under_its_ticket(make_kanal):
    k = await make_kanal()
    first = await sms_in_queue(k, 1, TEXT, at="07:00")
    again = await sms_in_queue(k, 2, f"Ulang: {TEXT}", at="08:00")
    await _suggest_duplicate(k, again, first)
    await k.store.update_report(
        first, lambda r: r.model_copy(update={"status": "posted", "history": []})
    )
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    html = await (await k.client.get("/admin")).text()
    ticket = (await k.store.get_report(first)).ticket
    assert f'id="card-{first}"' not in html and f'id="card-{again}"' not in html
    line = re.search(rf'id="group-{first}".*?\n  </li>', html, re.S).group(0)
    assert f'>{ticket}</a> <span class="muted small">(terkirim, tidak di antrean ini)' in line
    assert f"Tolak 1 sebagai duplikat {ticket}" in line and f'href="/admin/reports/{again}"' in line
