"""/admin as plain HTTP (no browser): the queue, one report, one-click accepts, submit, the
lease told to a second admin, read-only viewers, CSRF, scope, and the stats page."""

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


async def test_a_kelurahan_admin_enriches_and_submits_a_report_from_the_pages(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    elsewhere = await sms_in_queue(k, 2, "Sampah di Tebet Timur", owner="kelurahan:31.74.01.1001")
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)

    queue = await (await k.client.get("/admin")).text()
    assert report_id in queue and elsewhere not in queue
    assert re.search(r'class="age"[^>]*>\d+ (mnt|jam|hari)<', queue)

    page = await k.client.get(f"/admin/reports/{report_id}")
    html = await page.text()
    assert page.status == 200
    assert "SDN 01 Kelurahan Menteng" in html
    assert "Pesan asli dari kanal (SMS)" in html and "&#34;from&#34;" in html
    assert "Pakai lokasi Kel. Menteng" in html
    version = hidden(html, "version")

    r = await k.client.post(
        f"/admin/reports/{report_id}/accept",
        data={"csrf": csrf, "version": version, "kelurahan_code": "31.71.06.1001"},
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    report = await k.store.get_report(report_id)
    assert report.location.kelurahan.code == "31.71.06.1001"
    assert report.lease.holder == "ana"

    r = await k.client.post(
        f"/admin/reports/{report_id}/enrich",
        data={
            "csrf": csrf,
            "version": str(report.version),
            "category": "jalan",
            "category_was": report.category.code,
            "description": "Lubang 1 m",
            "description_was": "",
        },
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    r = await k.client.post(
        f"/admin/reports/{report_id}/submit", data={"csrf": csrf}, allow_redirects=False
    )
    assert r.status == 303 and r.headers["Location"].startswith("/admin?ok=submitted")
    report = await k.store.get_report(report_id)
    assert (report.status, report.owner, report.category.code) == ("ready", MENTENG, "jalan")
    assert report.description == "Lubang 1 m" and report.text == TEXT
    assert [h.by for h in report.history if h.by != "system"] == ["ana", "ana", "ana"]


async def test_a_second_admin_is_told_who_holds_the_report(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    r = await k.client.post(
        f"/admin/reports/{report_id}/claim", data={"csrf": csrf}, allow_redirects=False
    )
    assert r.status == 303
    other = await second_client(k)
    try:
        csrf2 = await sign_in(other, "budi", "kota:31.71", store=k.store)
        html = await (await other.get(f"/admin/reports/{report_id}")).text()
        assert "Sedang dikerjakan oleh ana" in html
        r = await other.post(
            f"/admin/reports/{report_id}/submit", data={"csrf": csrf2}, allow_redirects=False
        )
        # Post/redirect/get: the refusal is told by the page the browser is sent to, once.
        assert r.status == 303 and r.headers["Location"] == f"/admin/reports/{report_id}"
        page = await other.get(r.headers["Location"])
        assert "sedang dikerjakan oleh ana" in await page.text()
        again = await other.get(r.headers["Location"])
        assert "sedang dikerjakan oleh ana" not in await again.text()
        assert (await k.store.get_report(report_id)).status == "pending_enrichment"
    finally:
        await other.close()


async def test_viewers_read_without_forms_and_their_posts_are_refused(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    csrf = await sign_in(k.client, "vera", MENTENG, role="viewer", store=k.store)
    html = await (await k.client.get(f"/admin/reports/{report_id}")).text()
    assert "Kirim ke CRM" not in html and "hanya baca" in html
    r = await k.client.post(f"/admin/reports/{report_id}/claim", data={"csrf": csrf})
    assert r.status == 403
    assert (await k.store.get_report(report_id)).lease is None


async def test_a_post_without_the_csrf_token_changes_nothing(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    r = await k.client.post(f"/admin/reports/{report_id}/claim", data={})
    assert r.status == 403
    assert (await k.store.get_report(report_id)).lease is None


async def test_pages_outside_the_scope_are_404_and_signed_out_people_go_to_signin(make_kanal):
    k = await make_kanal()
    elsewhere = await sms_in_queue(k, 2, "Sampah di Tebet Timur", owner="kelurahan:31.74.01.1001")
    r = await k.client.get("/admin", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/signin")
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    r = await k.client.get(f"/admin/reports/{elsewhere}")
    assert r.status == 404 and "Tebet" not in await r.text()
    r = await k.client.get(f"/admin/reports/{elsewhere}/files/0")
    assert r.status == 404


async def test_the_stats_page_draws_its_charts_in_svg(make_kanal):
    k = await make_kanal()
    await sms_in_queue(k, 1, TEXT)
    await sign_in(k.client, "budi", "kota:31.71", store=k.store)
    r = await k.client.get("/admin/stats")
    html = await r.text()
    assert r.status == 200
    assert html.count("<svg") >= 3
    assert "Kel. Menteng, Kec. Menteng" in html  # its queue, with the age of its oldest report
    assert MENTENG not in html
    assert "<script" not in html


async def test_a_done_report_the_citizen_wrote_on_again_is_in_the_queue_until_seen(make_kanal):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 90, "Lampu jalan mati lagi di Jalan Cikini Raya")

    def done_and_flagged(r):  # type: ignore[no-untyped-def]
        return r.model_copy(
            update={"status": "done", "attention": "follow_up_after_done", "history": []}
        )

    await k.store.update_report(report_id, done_and_flagged)
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    queue = await (await k.client.get("/admin")).text()
    assert report_id in queue and "warga menulis lagi" in queue
    page = await (await k.client.get(f"/admin/reports/{report_id}")).text()
    assert "Sudah dibaca" in page
    response = await k.client.post(
        f"/admin/reports/{report_id}/seen",
        data={"csrf": csrf, "version": hidden(page, "version")},
        allow_redirects=False,
    )
    assert response.status in (302, 303)
    current = await k.store.get_report(report_id)
    assert current is not None and current.attention is None and current.status == "done"
    assert report_id not in await (await k.client.get("/admin")).text()


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_a_browser_whose_form_is_refused_is_sent_back_with_the_reason_told_once(
    make_kanal,
):
    k = await make_kanal()
    report_id = await sms_in_queue(k, 1, TEXT)
    await sign_in(k.client, "ana", MENTENG, store=k.store)
    here = f"/admin/reports/{report_id}"
    # An expired form (no token): back to the report, nothing changed.
    r = await k.client.post(f"{here}/claim", data={}, headers=BROWSER, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == here
    page = await (await k.client.get(here)).text()
    assert "Formulir kedaluwarsa; tidak ada yang diubah" in page
    assert "Formulir kedaluwarsa" not in await (await k.client.get(here)).text()
    r = await k.client.post(
        "/admin/reject",
        data={"id": report_id, "reason": "spam", "back": "channel=sms"},
        headers=BROWSER,
        allow_redirects=False,
    )
    assert r.status == 303 and r.headers["Location"] == "/admin?channel=sms"
    assert (await k.store.get_report(report_id)).status == "pending_enrichment"
    assert (await k.store.get_report(report_id)).lease is None

    # A viewer's browser: back to the page with why.
    viewer = await second_client(k)
    try:
        csrf = await sign_in(viewer, "vera", MENTENG, role="viewer", store=k.store)
        r = await viewer.post(
            f"{here}/take", data={"csrf": csrf}, headers=BROWSER, allow_redirects=False
        )
        assert r.status == 303 and r.headers["Location"] == "/admin?"
        queue = await (await viewer.get("/admin")).text()
        assert "Peran Anda hanya dapat membaca; tidak ada yang diubah" in queue
        # A script or API client still gets the 403.
        r = await viewer.post(f"{here}/claim", data={"csrf": csrf}, allow_redirects=False)
        assert r.status == 403
    finally:
        await viewer.close()
    assert (await k.store.get_report(report_id)).status == "pending_enrichment"
