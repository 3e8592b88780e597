"""/admin in a real browser (headless Chromium): a kelurahan admin opens the oldest report,
accepts a location suggestion, sets the category, submits, and the report reaches the local
test CRM; a second admin trying the same report meanwhile is told who holds it.
Screenshots at phone and desktop widths go to test-artifacts/screenshots/."""

from __future__ import annotations

from gateway.crm.dispatcher import Dispatcher
from tests.conftest import ROOT, need_binary
from tests.fakes.open311 import FakeOpen311
from tests.gateway.crm.helpers import crm_section
from tests.gateway.web.admin.helpers import MENTENG, PASSWORD, sms_in_queue

SHOTS = ROOT / "test-artifacts" / "screenshots"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
OLDEST = "Jalan berlubang besar di depan SDN 01 Kelurahan Menteng, motor sering jatuh"
NEWER = "Lampu jalan mati di gang sebelah masjid"


async def shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    for size_name, size in SIZES.items():
        await page.set_viewport_size(size)
        await page.screenshot(path=str(SHOTS / f"{name}-{size_name}.png"), full_page=True)


async def sign_in(page, base: str, name: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{base}/admin")
    await page.get_by_label("Nama pengguna").fill(name)
    await page.get_by_label("Kata sandi").fill(PASSWORD)
    await page.get_by_role("button", name="Masuk").click()
    await page.wait_for_url(f"{base}/admin")


async def test_a_kelurahan_admin_enriches_the_oldest_report_in_the_browser(make_kanal):
    chromium = need_binary("chromium", "chromium")
    from playwright.async_api import async_playwright

    from gateway.web.people import create_user

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with FakeOpen311() as crm:
        k = await make_kanal(extra=crm_section(crm.endpoint))
        oldest = await sms_in_queue(k, 1, OLDEST, at="07:00")
        await sms_in_queue(k, 2, NEWER, at="09:30")
        await create_user(k.store, "ana", PASSWORD, "admin", MENTENG)
        await create_user(k.store, "budi", PASSWORD, "admin", "kota:31.71")
        base = k.base_url
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
            try:
                ana = await (await browser.new_context(viewport=SIZES["phone"])).new_page()
                await sign_in(ana, base, "ana")
                items = ana.locator("ol.queue > li")
                assert await items.count() == 2
                assert OLDEST[:40] in (await items.first.text_content() or "")
                await shoot(ana, "admin-queue")
                await items.first.locator("a.open").click()
                await ana.wait_for_url(f"{base}/admin/reports/{oldest}")
                await shoot(ana, "admin-report")

                await ana.get_by_role("button", name="Pakai lokasi Kel. Menteng").first.click()
                await ana.wait_for_url(f"{base}/admin/reports/{oldest}?ok=saved")
                assert "Menteng" in (await ana.locator("#current-location").text_content() or "")

                # Meanwhile a kota admin opens the same report: told who holds it.
                budi = await (await browser.new_context(viewport=SIZES["desktop"])).new_page()
                await sign_in(budi, base, "budi")
                await budi.goto(f"{base}/admin/reports/{oldest}")
                assert "Sedang dikerjakan oleh ana" in (
                    await budi.locator("#lease").text_content() or ""
                )
                await budi.get_by_role("button", name="Kirim ke CRM").click()
                message = await budi.locator("#message").text_content() or ""
                assert "sedang dikerjakan oleh ana" in message
                await shoot(budi, "admin-report-held")

                await ana.locator("#category").select_option("jalan")
                await ana.get_by_role("button", name="Simpan").click()
                await ana.wait_for_url(f"{base}/admin/reports/{oldest}?ok=saved")
                assert "Jalan" in (await ana.locator("#current-category").text_content() or "")
                await shoot(ana, "admin-report-enriched")
                await ana.get_by_role("button", name="Kirim ke CRM").click()
                await ana.wait_for_url(f"{base}/admin?ok=submitted*")
                assert await ana.locator("ol.queue > li").count() == 1
                await shoot(ana, "admin-queue-after")

                await budi.goto(f"{base}/admin/stats")
                await shoot(budi, "admin-stats")
            finally:
                await browser.close()

        report = await k.store.get_report(oldest)
        assert (report.status, report.owner, report.category.code) == ("ready", MENTENG, "jalan")
        dispatcher = Dispatcher(k.runtime)
        assert await dispatcher.drain() == 1
        await dispatcher.close()
        [(headers, form)] = crm.requests
        assert headers["Idempotency-Key"] == oldest
        assert form["attribute[kelurahan]"] == "31.71.06.1001"
        assert form["description"] == OLDEST
        assert (await k.store.get_report(oldest)).status == "posted"
    assert (SHOTS / "admin-report-held-phone.png").stat().st_size > 0
