"""The /admin queue in a real browser (headless Chromium): an admin works through 50 queued
non-geo reports where kanal guessed right, one key or one click each, timed; the keys pick
and reject cards at once; the stats and the queue fit a 390 px phone."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import need_binary
from tests.gateway.web.admin.helpers import PASSWORD, send_sms, sms_in_queue
from tests.gateway.web.admin.test_admin_browser import ARGS, SHOTS, SIZES, sign_in

KOTA = "kota:31.71"
# (words of the complaint, the category kanal should guess)
PROBLEMS = (
    ("Jalan berlubang besar, motor sering jatuh", "jalan"),
    ("Banjir setinggi lutut sejak pagi, air tidak surut", "banjir"),
)
# (how citizens name the place, the kelurahan code kanal should suggest first)
PLACES = (
    ("Kelurahan Menteng", "31.71.06.1001"),
    ("Kelurahan Cikini", "31.71.06.1003"),
    ("Kelurahan Gondangdia", "31.71.06.1004"),
    ("Kelurahan Kebon Sirih", "31.71.06.1005"),
    ("Kelurahan Pegangsaan", "31.71.06.1002"),
)
N = 50
# Counts every key and click that reaches the pages of the tab (kept across page loads).
COUNT_INPUT = """
for (const kind of ["keydown", "click"]) {
  document.addEventListener(kind, () => {
    const key = "kanal-test-" + kind;
    sessionStorage.setItem(key, String(Number(sessionStorage.getItem(key) || 0) + 1));
  }, true);
}
"""


async def queue_of(k: Any, n: int, owner: str) -> dict[str, tuple[str, str]]:
    """`n` SMS from `n` citizens, each naming a place and a problem; all handed to `owner`.
    Returns report id → (kelurahan code, category code) that a right guess gives."""
    expected_by_text = {}
    for i in range(n):
        words, category = PROBLEMS[i % len(PROBLEMS)]
        place, code = PLACES[(i // len(PROBLEMS)) % len(PLACES)]
        text = f"Laporan {i:02d}: {words} di {place}."
        expected_by_text[text] = (code, category)
        await send_sms(k, f"q{i}", f"08123400{i:04d}", text, f"2026-11-27T08:{i:02d}:00+07:00")
    await k.drain()
    items, _ = await k.store.list_reports("province", status=["pending_enrichment"], limit=n)
    assert len(items) == n
    expected = {}
    for report in items:
        await k.store.update_report(
            report.id, lambda r: r.model_copy(update={"owner": owner, "history": []})
        )
        code, category = expected_by_text[report.text]
        # The premise of the run: kanal's top location and its category are right.
        assert report.suggestions.locations[0].kelurahan.code == code, report.text
        assert report.category.code == category, report.text
        expected[report.id] = (code, category)
    return expected


async def test_an_admin_works_through_50_right_guesses_with_one_key_or_click_each(make_kanal):
    chromium = need_binary("chromium", "chromium")
    from playwright.async_api import async_playwright

    from gateway.web.people import create_user

    k = await make_kanal()
    expected = await queue_of(k, N, KOTA)
    await create_user(k.store, "budi", PASSWORD, "admin", KOTA)
    base = k.base_url
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            context = await browser.new_context(viewport=SIZES["desktop"])
            await context.add_init_script(COUNT_INPUT)
            page = await context.new_page()
            await sign_in(page, base, "budi")
            await page.evaluate("sessionStorage.clear()")  # sign-in typing is not the work
            assert await page.locator("#keys").is_visible()  # the keys are on the page
            actions = 0
            started = time.perf_counter()
            for n in range(N):
                cards = page.locator("ol.queue > li.item")
                assert await cards.count() == N - n
                async with page.expect_navigation():
                    if n % 10 == 0:  # every tenth by mouse: one click on the button
                        await cards.first.get_by_role("button", name="Terima & kirim").click()
                    else:  # the rest by keyboard: the first card has the focus
                        await page.keyboard.press("a")
                actions += 1
            elapsed = time.perf_counter() - started
            assert "Antrean kosong" in (await page.text_content("main") or "")
            keys = int(await page.evaluate("sessionStorage.getItem('kanal-test-keydown') || 0"))
            clicks = int(await page.evaluate("sessionStorage.getItem('kanal-test-click') || 0"))
        finally:
            await browser.close()
    print(
        f"\n{N} reports: {keys} keys + {clicks} clicks = {(keys + clicks) / N:.2f} per report, "
        f"{elapsed / N * 1000:.0f} ms per report ({elapsed:.1f} s)"
    )
    assert actions == N and keys + clicks == N and clicks == N // 10
    for report_id, (code, category) in expected.items():
        report = await k.store.get_report(report_id)
        assert report.status == "ready"
        assert report.location.kelurahan.code == code
        assert report.category.code == category
        assert report.owner == f"kelurahan:{code}"
        assert [h.note for h in report.history if h.by == "budi"] == ["enriched", "submitted"]


async def test_keys_pick_cards_and_reject_them_at_once_and_pages_fit_a_phone(make_kanal):
    chromium = need_binary("chromium", "chromium")
    from playwright.async_api import async_playwright

    from gateway.web.people import create_user

    k = await make_kanal()
    keep = await sms_in_queue(k, 1, "Jalan berlubang di Kelurahan Menteng", owner=KOTA, at="07:00")
    spam = [
        await sms_in_queue(k, n, f"Promo pulsa murah nomor {n}", owner=KOTA, at=f"0{n + 6}:00")
        for n in (2, 3)
    ]
    await sms_in_queue(k, 4, "Sampah di Tebet Timur", owner="kelurahan:31.74.01.1001", at="10:00")
    await create_user(k.store, "budi", PASSWORD, "admin", "province")
    base = k.base_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            page = await (await browser.new_context(viewport=SIZES["phone"])).new_page()
            await sign_in(page, base, "budi")
            for key in ("j", "x", "j", "x", "r"):
                await page.keyboard.press(key)
            assert await page.evaluate("document.activeElement.id") == "bulk-reason"
            await page.select_option("#bulk-reason", "spam")
            await page.get_by_role("button", name="Tolak yang dipilih").click()
            await page.wait_for_load_state()
            assert "2 laporan ditolak (Spam)" in (await page.text_content("#message") or "")
            await page.screenshot(path=str(SHOTS / "admin-queue-bulk-phone.png"), full_page=True)
            await page.reload()  # get, not post: nothing happens again, the message is gone
            assert await page.locator("#message").count() == 0
            for path in ("/admin", "/admin/stats", f"/admin/reports/{keep}", "/"):
                await page.goto(f"{base}{path}")
                widths = await page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth,"
                    " Math.max(0, ...[...document.querySelectorAll('svg')]"
                    ".map(s => s.getBoundingClientRect().right))]"
                )
                assert widths[0] <= widths[1] == 390 and widths[2] <= 390, (path, widths)
            await page.goto(f"{base}/admin/stats")
            await page.screenshot(path=str(SHOTS / "admin-stats-phone.png"), full_page=True)
        finally:
            await browser.close()
    assert [(await k.store.get_report(i)).status for i in spam] == ["rejected", "rejected"]
    assert (await k.store.get_report(keep)).status == "pending_enrichment"
