"""The ticket in an acknowledgement leads somewhere: `/track/{ticket}` in a real browser
(headless Chromium) shows `done` green, `rejected` grey and the others amber."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from normalizers.report import HistoryEntry, Report
from tests.conftest import need_binary
from tests.gateway.notify.helpers import arrive, sms

COLOURS = {
    "done": "rgb(211, 243, 220)",
    "rejected": "rgb(227, 229, 232)",
    "pending_enrichment": "rgb(253, 233, 195)",
}


async def set_status(k: Any, report_id: str, status: str) -> None:
    def change(report: Report) -> Report:
        changed = report.model_copy(update={"history": []})
        changed.status = status  # type: ignore[assignment]
        changed.history.append(HistoryEntry(at=datetime.now(UTC), status=status, by="test"))
        return changed

    await k.store.update_report(report_id, change)


async def test_track_shows_each_status_in_its_colour(make_kanal: Any) -> None:
    chromium = need_binary("chromium", "chromium")
    playwright = pytest.importorskip("playwright.async_api")
    k = await make_kanal()
    tickets = {}
    for status in COLOURS:
        report = await arrive(k, sms(connector="sms_generic", text=f"Laporan {status}"))
        if status != "pending_enrichment":
            await set_status(k, report.id, status)
        tickets[status] = report.ticket
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            page = await browser.new_page()
            for status, colour in COLOURS.items():
                response = await page.goto(f"{k.base_url}/track/{tickets[status]}")
                assert response is not None and response.status == 200
                badge = page.locator(".status")
                assert await badge.get_attribute("data-status") == status
                background = await badge.evaluate("e => getComputedStyle(e).backgroundColor")
                assert background == colour, (status, background)
                assert "+6281234567890" not in await page.content()  # no personal data
        finally:
            await browser.close()
