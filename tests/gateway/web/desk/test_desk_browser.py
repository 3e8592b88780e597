"""The desk in a real browser (headless Chromium): sign in, fill the walk-in form with a photo,
submit, read the ticket off the receipt and find the report through the API. Screenshots of
every page at phone and desktop widths go to test-artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path

from gateway.web.people import create_user
from tests.conftest import ROOT, need_binary
from tests.gateway.web.desk.helpers import PASSWORD, jpeg_bytes

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


async def shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    for size_name, size in SIZES.items():
        await page.set_viewport_size(size)
        await page.screenshot(path=str(SHOTS / f"{name}-{size_name}.png"), full_page=True)


async def test_an_officer_takes_a_walk_in_complaint_with_a_photo_in_the_browser(
    make_kanal, tmp_path
):
    chromium = need_binary("chromium", "chromium")
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    photo = Path(tmp_path) / "lubang.jpg"
    photo.write_bytes(jpeg_bytes((640, 480)))
    k = await make_kanal()
    await create_user(k.store, "rina", PASSWORD, "officer", "office:balai_kota")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            page = await browser.new_page(viewport=SIZES["phone"])
            await page.goto(f"{k.base_url}/desk")
            assert page.url.startswith(f"{k.base_url}/signin")
            await shoot(page, "signin")
            await page.get_by_label("Nama pengguna").fill("rina")
            await page.get_by_label("Kata sandi").fill(PASSWORD)
            await page.get_by_role("button", name="Masuk").click()
            await page.wait_for_url(f"{k.base_url}/desk")
            await shoot(page, "desk")

            await page.get_by_label("Meja pengaduan").select_option("kota:31.75")
            await page.get_by_label("Nama", exact=True).fill("Slamet")
            phone = page.get_by_label("Nomor telepon")
            await phone.fill("0812 3456 7890")
            assert (
                await page.locator("#phone-hint").text_content()
                == "Disimpan sebagai +6281234567890"
            )
            await page.get_by_label("Isi pengaduan").fill("Jalan berlubang besar di depan pasar")
            # The search box (script) fills the plain kelurahan <select>.
            await page.locator("#kelurahan-search").fill("kampung mel")
            await page.locator(".suggest button").first.click()
            assert await page.get_by_label("Kelurahan", exact=True).input_value() != ""
            await page.get_by_label("Foto").set_input_files(str(photo))
            await shoot(page, "desk-filled")
            await page.get_by_role("button", name="Kirim pengaduan").click()
            await page.wait_for_url(f"{k.base_url}/desk/receipt/*")
            ticket = (await page.locator("#ticket").text_content() or "").strip()
            assert ticket.startswith("KNL-")
            await shoot(page, "receipt")

            await page.goto(f"{k.base_url}/desk/media")
            await shoot(page, "media")
            # A failed submit keeps what was typed and says what is wrong next to the field.
            await page.get_by_label("Isi pengaduan").fill("Sampah menumpuk di Tanah Abang")
            await page.get_by_role("button", name="Simpan kliping").click()
            assert await page.locator("#outlet-error").text_content() == "Nama media wajib diisi."
            assert (
                await page.get_by_label("Isi pengaduan").input_value()
                == "Sampah menumpuk di Tanah Abang"
            )
            await shoot(page, "media-error")
        finally:
            await browser.close()

    await k.drain()
    token = await k.token()
    r = await k.client.get(
        "/api/v1/reports",
        params={"channel": "balai_kota"},
        headers={"Authorization": f"Bearer {token}"},
    )
    [report] = (await r.json())["items"]
    assert report["ticket"] == ticket
    assert report["owner"] == "office:balai_kota"
    assert report["reporter"]["phone"] == "+6281234567890"
    assert [a["content_type"] for a in report["attachments"]] == ["image/jpeg"]
    assert (SHOTS / "receipt-phone.png").stat().st_size > 0


async def test_the_walk_in_form_works_without_javascript(make_kanal):
    chromium = need_binary("chromium", "chromium")
    from playwright.async_api import async_playwright

    k = await make_kanal()
    await create_user(k.store, "tono", PASSWORD, "officer", "kelurahan:31.71.06.1001")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            context = await browser.new_context(
                java_script_enabled=False, viewport=SIZES["desktop"]
            )
            page = await context.new_page()
            await page.goto(f"{k.base_url}/signin")
            await page.get_by_label("Nama pengguna").fill("tono")
            await page.get_by_label("Kata sandi").fill(PASSWORD)
            await page.get_by_role("button", name="Masuk").click()
            await page.get_by_label("Kelurahan", exact=True).select_option("31.71.06.1001")
            await page.get_by_label("Isi pengaduan").fill("Pohon tumbang menutup jalan")
            await page.get_by_role("button", name="Kirim pengaduan").click()
            ticket = (await page.locator("#ticket").text_content() or "").strip()
            assert ticket.startswith("KNL-")
            assert await page.locator("[data-print]").is_hidden()
        finally:
            await browser.close()
