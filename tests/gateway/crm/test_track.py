"""The citizen's tracking page, and `kanal crm retry --dead` from the command line."""

from __future__ import annotations

import asyncio
import sys

from gateway.crm.dispatcher import Dispatcher
from tests.fakes.open311 import FakeOpen311
from tests.gateway.crm.helpers import crm_section, jaki_body, jaki_headers


async def _ticket(k, n: int = 0) -> str:  # type: ignore[no-untyped-def]
    body = jaki_body(n)
    r = await k.client.post("/webhooks/jaki", data=body, headers=jaki_headers(body))
    assert r.status == 200
    return str((await r.json())["ticket"])


async def test_track_shows_status_and_dates_in_indonesian_without_personal_data(make_kanal):
    async with FakeOpen311() as crm:
        k = await make_kanal(extra=crm_section(crm.endpoint))
        ticket = await _ticket(k)
        r = await k.client.get(f"/track/{ticket}")
        page = await r.text()
        assert r.status == 200 and "Diterima" in page  # stored, not normalized yet
        await k.drain()
        dispatcher = Dispatcher(k.runtime)
        await dispatcher.drain()
        await dispatcher.close()
        r = await k.client.get(f"/track/{ticket.lower()}")
        page = await r.text()
        assert r.status == 200 and r.content_type == "text/html"
        assert "Diteruskan" in page and "status-amber" in page and "WIB" in page
        for private in (
            "Siti",
            "Rahma",
            "081234567890",
            "+62812",
            "siti@example.id",
            "berlubang",
            "Besuki",
            "SR-",
        ):
            assert private not in page
        assert "<script" not in page

        rid = crm.record_for(await k.store.report_id_by_ticket(ticket) or "").service_request_id
        crm.close_request(rid, "Sudah diperbaiki oleh Budi 0812999")
        from gateway.crm.status import poll_statuses

        await poll_statuses(k.runtime)
        page = await (await k.client.get(f"/track/{ticket}")).text()
        assert "Selesai" in page and "status-green" in page and "Budi" not in page


async def test_a_rejected_report_is_grey_and_an_unknown_ticket_gets_an_indonesian_404(make_kanal):
    k = await make_kanal()
    ticket = await _ticket(k)
    await k.drain()
    rid = await k.store.report_id_by_ticket(ticket)
    assert rid

    def reject(r):  # type: ignore[no-untyped-def]
        return r.model_copy(update={"status": "rejected", "history": []})

    await k.store.update_report(rid, reject)
    page = await (await k.client.get(f"/track/{ticket}")).text()
    assert "status-grey" in page and "Tidak ditindaklanjuti" in page
    r = await k.client.get("/track/KNL-0000-0000")
    assert r.status == 404 and "Tiket tidak ditemukan" in await r.text()
    r = await k.client.get("/track/%3Cscript%3E")
    assert r.status == 404 and "<script>" not in await r.text()


async def test_kanal_crm_retry_dead_revives_failed_reports_and_sends_them(make_kanal, tmp_path):
    async with FakeOpen311() as crm:
        k = await make_kanal(extra=crm_section(crm.endpoint))
        await _ticket(k)
        await k.drain()
        crm.reject_field("email", "email not accepted")
        dispatcher = Dispatcher(k.runtime)
        await dispatcher.drain()
        await dispatcher.close()
        items, _ = await k.store.list_reports("province", status=["failed"])
        assert len(items) == 1
        crm.accept_field("email")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            "crm",
            "retry",
            "--dead",
            "--config",
            str(tmp_path / "kanal.toml"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        assert "1 failed report(s) revived" in out.decode()
        report = await k.store.get_report(items[0].id)
        assert report is not None and report.status == "posted"
        assert crm.unique_reports() == {items[0].id}


def test_internal_events_never_show_on_the_citizens_page():
    from datetime import UTC, datetime

    from gateway.web.track import render_report
    from normalizers.report import Report

    at = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    report = Report(
        id="r",
        ticket="KNL-AAAA-BBBB",
        channel="telegram",
        connector="telegram",
        intake="webhook",
        external_id="1:2",
        received_at=at,
        owner="province",
        status="pending_enrichment",
    )
    html = render_report(
        "KNL-AAAA-BBBB",
        report,
        [
            (at, "received"),
            (at, "joined"),
            (at, "unsent"),
            (at, "pending_enrichment"),
            (at, "follow_up"),
            (at, "attachment"),
        ],
    )
    for internal in ("joined", "unsent", "follow_up", "attachment"):
        assert internal not in html
    assert "Sedang dilengkapi petugas" in html


def test_the_page_shows_one_received_time_the_citizens_labelled_as_such():
    from datetime import UTC, datetime

    from gateway.web.track import render_report
    from normalizers.report import Report

    sent = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 08.00 WIB: when the citizen sent it
    recorded = datetime(2026, 11, 27, 5, 30, tzinfo=UTC)  # 12.30 WIB: when kanal got it
    report = Report(
        id="r",
        ticket="KNL-AAAA-BBBB",
        channel="jaki",
        connector="jaki",
        intake="webhook",
        external_id="JAKI-1",
        received_at=sent,
        owner="province",
        status="pending_enrichment",
    )
    html = render_report(
        "KNL-AAAA-BBBB", report, [(recorded, "received"), (recorded, "pending_enrichment")]
    )
    assert "<dt>Diterima</dt><dd>27 November 2026, 08.00 WIB" in html
    assert "(saat Anda mengirim laporan)" in html
    assert "27 November 2026, 08.00 WIB — Diterima" in html  # the history agrees
    assert html.count("12.30 WIB") == 2  # the next step, and the last update
