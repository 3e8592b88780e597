"""WhatsApp end to end: signed deliveries through /webhooks/whatsapp, the pipeline, the
media worker and the notifier, against a strict local fake of the Graph API."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from gateway.store.schema import outbound, raw_messages
from tests.connectors.signing import meta_signature
from tests.fakes.whatsapp_api import FakeWhatsAppGraph
from tests.gateway.notify.helpers import notification, notifier
from tests.gateway.pipeline.social.helpers import jpeg, loopback_media

SECRET = "wa-app-secret"
TOKEN = "wa-access-token"
NUMBER = "106540352242922"
CITIZEN = "6281234567890"
EXTRA = f"""
[channels.whatsapp]
enabled = true
app_secret = "{SECRET}"
verify_token = "wa-verify"
access_token = "{TOKEN}"
media_hosts = ["127.0.0.1"]
template_language = "id"

[channels.whatsapp.numbers."{NUMBER}"]
owner = "kota:31.71"
"""


def delivery(message: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281100001500", "phone_number_id": NUMBER},
    }
    if message is not None:
        value["contacts"] = [{"profile": {"name": "Siti"}, "wa_id": message["from"]}]
        value["messages"] = [message]
    if status is not None:
        value["statuses"] = [status]
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1022", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


_ids = iter(range(1, 10_000))


def message(kind: str, body: Any, *, at: datetime | None = None, wa_id: str = CITIZEN) -> dict:
    when = at or datetime.now(UTC)
    return {
        "from": wa_id,
        "id": f"wamid.TEST{next(_ids):06d}",
        "timestamp": str(int(when.timestamp())),
        "type": kind,
        kind: body,
    }


async def post(k: Any, body: bytes) -> None:
    headers = {"X-Hub-Signature-256": meta_signature(SECRET, body)}
    response = await k.client.post("/webhooks/whatsapp", data=body, headers=headers)
    assert response.status == 200, await response.text()
    await k.drain()


async def report_of(k: Any, wamid: str) -> Any:
    async with k.store.read() as conn:
        row = (
            await conn.execute(
                select(raw_messages.c.report_id).where(raw_messages.c.external_id == wamid)
            )
        ).one()
    return None if row.report_id is None else await k.store.get_report(row.report_id)


async def kanal_with(make_kanal: Any, graph: FakeWhatsAppGraph, template: str = "") -> Any:
    k = await make_kanal(extra=EXTRA)
    section = k.runtime.settings.connector("whatsapp")
    section.graph_url = graph.graph_url
    section.template_name = template
    return k


async def test_a_text_is_acknowledged_in_the_window_and_its_failed_delivery_recorded(
    make_kanal: Any,
) -> None:
    async with FakeWhatsAppGraph(TOKEN, {NUMBER}) as graph:
        k = await kanal_with(make_kanal, graph)
        text = message("text", {"body": "Lampu jalan mati di Jl. Kebon Sirih no. 12"})
        graph.citizen_wrote(CITIZEN, datetime.now(UTC))
        await post(k, delivery(text))
        report = await report_of(k, text["id"])
        assert report.channel == "whatsapp" and report.owner == "kota:31.71"
        assert report.reporter.phone == "+6281234567890"
        n = notifier(k)
        await n.drain()
        await n.close()
        [sent] = graph.sent
        assert sent["type"] == "text" and sent["to"] == CITIZEN
        assert report.ticket in sent["text"]["body"]
        assert (await notification(k, report.id))["state"] == "sent"
        async with k.store.read() as conn:
            wamid = (await conn.execute(select(outbound.c.provider_message_id))).scalar_one()
        failed = {
            "id": wamid,
            "status": "failed",
            "timestamp": str(int(datetime.now(UTC).timestamp())),
            "recipient_id": CITIZEN,
            "errors": [{"code": 131026, "title": "Message undeliverable"}],
        }
        await post(k, delivery(status=failed))
        shown = await notification(k, report.id)
        assert shown["state"] == "failed"
        assert shown["error"] == "delivery failed: 131026 Message undeliverable"
        assert await report_of(k, f"status:{wamid}:failed") is None  # never a report


async def test_outside_the_window_the_template_goes_or_a_failure_says_none_is_configured(
    make_kanal: Any,
) -> None:
    async with FakeWhatsAppGraph(TOKEN, {NUMBER}) as graph:
        graph.approve_template("laporan_diterima", "id")
        k = await kanal_with(make_kanal, graph)
        old = datetime.now(UTC) - timedelta(hours=25)
        first = message("text", {"body": "Jalan berlubang di Jl. Salemba Raya"}, at=old)
        await post(k, delivery(first))
        n = notifier(k)
        await n.drain()
        await n.close()
        report = await report_of(k, first["id"])
        shown = await notification(k, report.id)
        assert shown["state"] == "failed"
        assert "no template_name configured" in shown["error"]
        assert graph.sent == []

        k.runtime.settings.connector("whatsapp").template_name = "laporan_diterima"
        late = message("text", {"body": "Got mampet di Jl. Kramat"}, at=old, wa_id="628577")
        # Within the window by kanal's clock, but Graph says it closed (131047): a template.
        fresh = message("text", {"body": "Pohon tumbang di Jl. Cikini"}, wa_id="628588")
        await post(k, delivery(late))
        await post(k, delivery(fresh))
        n = notifier(k)
        await n.drain()
        await n.close()
        assert [s["type"] for s in graph.sent] == ["template", "template"]
        for sent, raw in zip(graph.sent, (late, fresh), strict=True):
            ticket = (await report_of(k, raw["id"])).ticket
            assert sent["template"]["name"] == "laporan_diterima"
            assert sent["template"]["language"] == {"code": "id"}
            assert sent["template"]["components"][0]["parameters"] == [
                {"type": "text", "text": ticket}
            ]


async def test_media_by_graph_id_with_bearer_a_lapsed_url_resolved_again_sha256_checked(
    make_kanal: Any,
) -> None:
    async with FakeWhatsAppGraph(TOKEN, {NUMBER}) as graph:
        k = await kanal_with(make_kanal, graph)
        photo = jpeg()
        good = graph.add_media(photo, "image/jpeg")
        bad = graph.add_media(photo, "image/jpeg", sha256="0" * 64)
        graph.lapse_next = 1
        first = message("image", {"id": good, "mime_type": "image/jpeg", "caption": "Sampah"})
        second = message("image", {"id": bad, "mime_type": "image/jpeg"}, wa_id="628599")
        await post(k, delivery(first))
        await post(k, delivery(second))
        async with loopback_media(k) as worker:
            for _ in range(100):  # the damaged one is retried once, after a short backoff
                await worker.drain()
                if (await report_of(k, second["id"])).attachments[0].state != "pending":
                    break
                await asyncio.sleep(0.05)
        stored = (await report_of(k, first["id"])).attachments[0]
        assert stored.state == "stored" and stored.content_type == "image/jpeg"
        assert graph.lookups.count(good) == 2  # the lapsed URL was asked for again
        damaged = (await report_of(k, second["id"])).attachments[0]
        assert damaged.state == "unavailable" and "sha256" in (damaged.error or "")


async def test_a_first_halo_is_welcomed_and_makes_no_report(make_kanal: Any) -> None:
    async with FakeWhatsAppGraph(TOKEN, {NUMBER}) as graph:
        k = await kanal_with(make_kanal, graph)
        graph.citizen_wrote(CITIZEN, datetime.now(UTC))
        hello = message("text", {"body": "Halo min"})
        again = message("text", {"body": "halo"})
        await post(k, delivery(hello))
        await post(k, delivery(again))
        assert await report_of(k, hello["id"]) is None
        assert await report_of(k, again["id"]) is None
        n = notifier(k)
        await n.drain()
        await n.close()
        [sent] = graph.sent  # one welcome a day
        assert sent["text"]["body"] == k.runtime.settings.notify.welcome_text
        assert "lokasi" in sent["text"]["body"]


async def test_a_reaction_follows_up_the_open_report_and_alone_is_no_report(
    make_kanal: Any,
) -> None:
    async with FakeWhatsAppGraph(TOKEN, {NUMBER}) as graph:
        k = await kanal_with(make_kanal, graph)
        text = message("text", {"body": "Trotoar rusak di Jl. Sabang"})
        await post(k, delivery(text))
        heart = message("reaction", {"message_id": "wamid.OURS", "emoji": "\u2764\ufe0f"})
        await post(k, delivery(heart))
        report = await report_of(k, text["id"])
        assert [f.text for f in report.follow_ups] == ["\u2764\ufe0f"]
        assert report.text == "Trotoar rusak di Jl. Sabang"
        lone = message("sticker", {"id": "55", "mime_type": "image/webp"}, wa_id="628511")
        await post(k, delivery(lone))
        assert await report_of(k, lone["id"]) is None
