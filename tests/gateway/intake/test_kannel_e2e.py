"""An SMS through the real Kannel (bearerbox + smsbox, fake SMSC) into kanal's
/webhooks/sms/kannel: stored, normalized, and never answered with an SMS by accident."""

from __future__ import annotations

import asyncio

from tests.conftest import SECRETS, wait_for
from tests.fakes.kannel import KannelPeer

GET_URL = (
    "{base}/webhooks/sms/kannel?key={key}&id=%I&from=%p&to=%P&ts=%T&coding=%c&charset=%C&text=%b"
)


async def queue(k, token):  # type: ignore[no-untyped-def]
    await k.drain()
    response = await k.client.get("/api/v1/queue", headers={"Authorization": f"Bearer {token}"})
    return (await response.json())["items"]


async def test_an_sms_through_real_kannel_becomes_a_report_and_kannel_sends_nothing(
    make_kanal, tmp_path
):
    k = await make_kanal()
    token = await k.token()
    peer = KannelPeer(tmp_path, GET_URL.format(base=k.base_url, key=SECRETS["sms_kannel"]))
    await asyncio.to_thread(peer.start)
    try:
        peer.inject("+6281234567890", "1708", "Lampu jalan mati di Jl. Cikini Raya")
        peer.inject("TELKOMSEL", "1708", "Sampah menumpuk di Pasar Senen")

        async def both() -> list:  # type: ignore[type-arg]
            items = await queue(k, token)
            return items if len(items) == 2 else []

        items = await wait_for(both, timeout=20)
        by_text = {r["text"]: r for r in items}
        lamp = by_text["Lampu jalan mati di Jl. Cikini Raya"]
        assert lamp["reporter"]["phone"] == "+6281234567890"
        assert lamp["connector"] == "sms_kannel" and lamp["channel"] == "sms"
        assert lamp["owner"] == "office:balai_kota"
        assert by_text["Sampah menumpuk di Pasar Senen"]["reporter"]["phone"] is None
        await asyncio.sleep(1.5)  # time enough for an accidental reply to reach the SMSC
        assert peer.sent == [], "Kannel must not SMS kanal's HTTP answer back to the citizen"
    finally:
        await asyncio.to_thread(peer.stop)
