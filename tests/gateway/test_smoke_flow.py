import json

from connectors.base import kanal_signature
from tests.conftest import SECRETS


async def test_signed_generic_sms_lands_in_the_queue(make_kanal):
    k = await make_kanal()
    body = json.dumps(
        {
            "id": "m1",
            "from": "081234567890",
            "to": "1708",
            "text": "Jalan berlubang di Menteng",
            "received_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()
    r = await k.client.post(
        "/webhooks/sms/generic",
        data=body,
        headers={
            "X-Kanal-Signature": kanal_signature(SECRETS["sms_generic"], body),
            "Content-Type": "application/json",
        },
    )
    assert r.status == 200, await r.text()
    assert await k.drain() == 1
    token = await k.token()
    r = await k.client.get("/api/v1/queue", headers={"Authorization": f"Bearer {token}"})
    data = await r.json()
    assert r.status == 200
    [item] = data["items"]
    assert item["reporter"]["phone"] == "+6281234567890"
    assert item["status"] == "pending_enrichment"
