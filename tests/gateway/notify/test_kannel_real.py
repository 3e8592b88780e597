"""Through the REAL Kannel: an SMS injected at Kannel's fake SMSC reaches kanal's webhook,
becomes a report, and its acknowledgement goes out through Kannel's sendsms and arrives
back on the fake SMSC's socket, addressed to the citizen, with the ticket."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.notify.worker import Notifier
from tests.conftest import SECRETS, wait_for
from tests.fakes.kannel import kannel_peer  # noqa: F401  (the fixture)
from tests.gateway.notify.helpers import notification


async def test_a_kannel_sms_is_acknowledged_through_kannel_sendsms(
    make_kanal: Any,
    kannel_peer: Any,  # noqa: F811
) -> None:
    k = await make_kanal()
    get_url = (
        f"{k.base_url}/webhooks/sms/kannel?key={SECRETS['sms_kannel']}"
        "&id=%I&from=%p&to=%P&ts=%T&coding=%c&charset=%C&text=%b"
    )
    kannel = await asyncio.to_thread(kannel_peer, get_url)
    section = k.runtime.settings.channels.sms_kannel
    section.sendsms_url, section.sendsms_user = kannel.sendsms_url, kannel.user
    section.sendsms_password = kannel.password
    kannel.inject("+6281234567890", "1500123", "Lampu jalan mati di Jl. Kramat Raya")

    async def report_made() -> Any:
        await k.drain()
        items, _ = await k.store.list_reports("province", channel="sms")
        return items

    [report] = await wait_for(report_made, timeout=15)
    n = Notifier(k.runtime)
    await n.drain()
    await n.close()
    [sent] = await asyncio.to_thread(kannel.wait_for_sent, 1, 10.0)
    assert sent.receiver == "+6281234567890"
    assert report.ticket in sent.text and "/track/" in sent.text
    assert (await notification(k, report.id))["state"] == "sent"
