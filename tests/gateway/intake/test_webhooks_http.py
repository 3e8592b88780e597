"""Webhooks through the real HTTP path, on SQLite and PostgreSQL: every SMS wire format and
JAKI land as canonical reports; every refusal has its status and its metric; nothing is
stored twice."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import SECRETS
from tests.connectors.signing import kanal_sign, twilio_signature, vonage_signed


def generic_body(
    external_id: str = "m1",
    text: str = "Lampu PJU mati di Jl. Kebon Sirih",
    sender: str = "081234567890",
) -> bytes:
    return json.dumps(
        {
            "id": external_id,
            "from": sender,
            "to": "1708",
            "text": text,
            "received_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()


def jaki_body(external_id: str = "JAKI-1", lat: float = -6.1950, lon: float = 106.8230) -> bytes:
    return json.dumps(
        {
            "id": external_id,
            "reporter": {"name": "Siti", "phone": "0812-3456-7890", "email": "siti@example.id"},
            "text": "Jalan berlubang besar di depan halte",
            "category": "Jalan",
            "location": {"lat": lat, "lon": lon, "accuracy_m": 10, "address": "Jl. M.H. Thamrin"},
            "photos": ["https://jaki.example.id/p/1.jpg"],
            "created_at": "2026-11-27T09:00:00+07:00",
        }
    ).encode()


async def post_generic(k: Any, body: bytes, secret: str = SECRETS["sms_generic"]) -> Any:
    headers = {**kanal_sign(secret, body), "Content-Type": "application/json"}
    return await k.client.post("/webhooks/sms/generic", data=body, headers=headers)


async def api(k: Any, path: str, token: str) -> Any:
    response = await k.client.get(path, headers={"Authorization": f"Bearer {token}"})
    return response.status, await response.json()


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_an_sms_lands_in_the_queue_of_the_channel_owner(make_kanal, db_url):
    k = await make_kanal(db_url)
    response = await post_generic(k, generic_body())
    assert response.status == 200
    assert await k.drain() == 1
    status, page = await api(k, "/api/v1/queue", await k.token())
    assert status == 200
    [report] = page["items"]
    assert report["channel"] == "sms" and report["connector"] == "sms_generic"
    assert report["intake"] == "webhook" and report["external_id"] == "m1"
    assert report["status"] == "pending_enrichment" and report["owner"] == "province"
    assert report["geo_tagged"] is False and report["non_geo_reason"] == "no_location"
    assert report["reporter"]["phone"] == "+6281234567890"
    assert report["reporter"]["channel_user_id"] == "081234567890"
    assert re.fullmatch(r"KNL-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", report["ticket"])
    assert [h["status"] for h in report["history"]] == ["received", "pending_enrichment"] or report[
        "history"
    ] == []  # lists may omit history; the single view has it
    status, one = await api(k, f"/api/v1/reports/{report['id']}", await k.token())
    assert status == 200
    assert [h["status"] for h in one["history"]] == ["received", "pending_enrichment"]


async def test_a_geo_tagged_jaki_report_is_ready_and_addressed_to_its_kelurahan(make_kanal, db_url):
    k = await make_kanal(db_url)
    body = jaki_body()
    response = await k.client.post(
        "/webhooks/jaki", data=body, headers=kanal_sign(SECRETS["jaki"], body)
    )
    assert response.status == 200
    ticket = (await response.json())["ticket"]
    await k.drain()
    _, page = await api(k, "/api/v1/reports?status=ready", await k.token())
    [report] = page["items"]
    assert report["ticket"] == ticket
    assert report["geo_tagged"] is True and report["location"]["source"] == "device"
    assert report["location"]["kelurahan"] == {"code": "31.71.06.1001", "name": "Menteng"}
    assert report["owner"] == "kelurahan:31.71.06.1001"
    assert report["category"]["code"] == "jalan"
    assert report["attachments"][0]["source_url"] == "https://jaki.example.id/p/1.jpg"
    # The same delivery again answers the same ticket and creates nothing.
    again = await k.client.post(
        "/webhooks/jaki", data=body, headers=kanal_sign(SECRETS["jaki"], body)
    )
    assert again.status == 200 and (await again.json())["ticket"] == ticket
    await k.drain()
    _, page = await api(k, "/api/v1/reports", await k.token())
    assert len(page["items"]) == 1


async def test_a_jaki_report_outside_jakarta_waits_for_enrichment_as_out_of_area(make_kanal):
    k = await make_kanal()
    body = jaki_body("JAKI-depok", lat=-6.4025, lon=106.7942)
    await k.client.post("/webhooks/jaki", data=body, headers=kanal_sign(SECRETS["jaki"], body))
    await k.drain()
    _, page = await api(k, "/api/v1/queue", await k.token())
    [report] = page["items"]
    assert report["geo_tagged"] is False and report["non_geo_reason"] == "out_of_area"
    assert report["owner"] == "province"


async def test_a_redelivered_sms_answers_200_and_stores_nothing_new(make_kanal, db_url):
    k = await make_kanal(db_url)
    body = generic_body("dup-1")
    for _ in range(3):
        assert (await post_generic(k, body)).status == 200
    assert await k.store.count_raw() == 1
    metrics = await (await k.client.get("/metrics")).text()
    assert (
        metric(metrics, "kanal_webhook_requests_total", connector="sms_generic", reason="stored")
        == 1
    )
    assert (
        metric(metrics, "kanal_webhook_requests_total", connector="sms_generic", reason="duplicate")
        == 2
    )


@pytest.mark.parametrize(
    ("label", "path", "body", "headers", "status", "reason"),
    [
        (
            "bad signature",
            "/webhooks/sms/generic",
            generic_body(),
            kanal_sign("wrong", generic_body()),
            401,
            "bad_signature",
        ),
        ("no signature", "/webhooks/sms/generic", generic_body(), {}, 401, "bad_signature"),
        (
            "malformed JSON, signed",
            "/webhooks/sms/generic",
            b"{not json",
            kanal_sign(SECRETS["sms_generic"], b"{not json"),
            400,
            "malformed",
        ),
        (
            "a field missing, signed",
            "/webhooks/sms/generic",
            b'{"id": "x"}',
            kanal_sign(SECRETS["sms_generic"], b'{"id": "x"}'),
            400,
            "malformed",
        ),
        ("disabled connector", "/webhooks/telegram", b"{}", {}, 404, "unknown_connector"),
    ],
)
async def test_refusals_have_their_status_and_are_counted(
    make_kanal, label, path, body, headers, status, reason
):
    k = await make_kanal()
    response = await k.client.post(path, data=body, headers=headers)
    assert response.status == status, label
    error = await response.json()
    assert error["error"]["code"] == reason
    metrics = await (await k.client.get("/metrics")).text()
    connector = "telegram" if "telegram" in path else "sms_generic"
    assert metric(metrics, "kanal_webhook_requests_total", connector=connector, reason=reason) == 1
    if status == 401:
        assert await k.store.count_raw() == 0  # an unsigned request stores nothing


async def test_a_signed_but_malformed_payload_is_kept_and_shown_in_the_inbox(make_kanal):
    k = await make_kanal()
    body = b'{"id": 42, "text": []}'
    response = await k.client.post(
        "/webhooks/sms/generic", data=body, headers=kanal_sign(SECRETS["sms_generic"], body)
    )
    assert response.status == 400
    status, inbox = await api(k, "/api/v1/inbox", await k.token())
    assert status == 200
    [item] = inbox["items"]
    assert item["connector"] == "sms_generic" and item["error"]
    assert item["payload_size"] == len(body)


async def test_a_body_over_the_limit_gets_413(make_kanal):
    k = await make_kanal(extra="")
    big = b"{" + b" " * (1_048_576 + 10) + b"}"
    response = await k.client.post(
        "/webhooks/sms/generic", data=big, headers=kanal_sign(SECRETS["sms_generic"], big)
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_large"
    assert await k.store.count_raw() == 0


@pytest.mark.parametrize("failure", ["unavailable", "operational"])
async def test_an_unreachable_store_answers_503_so_the_platform_delivers_again(
    make_kanal, monkeypatch, failure
):
    from sqlalchemy.exc import OperationalError

    from gateway.store import StoreUnavailable

    k = await make_kanal()

    async def store_down(rows):
        if failure == "unavailable":
            raise StoreUnavailable("connection refused")
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(k.store, "insert_raw_batch", store_down)
    response = await post_generic(k, generic_body("while-down"))
    assert response.status == 503
    assert response.headers.get("Retry-After")
    assert (await response.json())["error"]["code"] == "store_unavailable"
    monkeypatch.undo()
    assert (await post_generic(k, generic_body("while-down"))).status == 200  # redelivery works
    assert await k.store.count_raw() == 1


async def test_twilio_sms_with_media_is_verified_over_the_public_url(make_kanal):
    k = await make_kanal()
    url = f"{k.runtime.settings.server.public_url}/webhooks/sms/twilio"
    params = {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": "AC" + "b" * 32,
        "From": "+6281234567890",
        "To": "+62215550000",
        "Body": "Banjir di RW 05 Kampung Melayu",
        "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/m/0",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://api.twilio.com/m/1",
        "MediaContentType1": "image/png",
    }
    response = await k.client.post(
        "/webhooks/sms/twilio",
        data=urlencode(params),
        headers={
            "X-Twilio-Signature": twilio_signature(SECRETS["sms_twilio"], url, params),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status == 200
    assert "<Response" in await response.text()  # empty TwiML: Twilio sends no SMS back
    # Signed for another URL (a proxy rewrote it, nobody told kanal): refused.
    response = await k.client.post(
        "/webhooks/sms/twilio",
        data=urlencode({**params, "MessageSid": "SM" + "c" * 32}),
        headers={
            "X-Twilio-Signature": twilio_signature(SECRETS["sms_twilio"], "https://other/x", params)
        },
    )
    assert response.status == 401
    await k.drain()
    _, page = await api(k, "/api/v1/queue", await k.token())
    [report] = page["items"]
    assert [a["source_url"] for a in report["attachments"]] == [
        "https://api.twilio.com/m/0",
        "https://api.twilio.com/m/1",
    ]


async def test_twilio_behind_a_trusted_proxy_is_verified_over_the_forwarded_url(make_kanal):
    k = await make_kanal(extra="")
    k.runtime.settings.server.trusted_proxies = ["127.0.0.0/8"]
    public = "https://gw.jakarta.example/kanal/webhooks/sms/twilio"
    params = {
        "MessageSid": "SM" + "d" * 32,
        "From": "+6281234567890",
        "To": "+62215550000",
        "Body": "Sampah numpuk",
        "NumMedia": "0",
    }
    response = await k.client.post(
        "/webhooks/sms/twilio",
        data=urlencode(params),
        headers={
            "X-Twilio-Signature": twilio_signature(SECRETS["sms_twilio"], public, params),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "gw.jakarta.example",
            "X-Forwarded-Prefix": "/kanal",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status == 200


async def test_vonage_parts_become_one_report_in_order(make_kanal, db_url):
    k = await make_kanal(db_url)
    base = {
        "msisdn": "6281234567890",
        "to": "62215550000",
        "type": "text",
        "concat": "true",
        "concat-ref": "77",
        "concat-total": "2",
        "message-timestamp": "2026-11-27 01:00:00",
    }
    parts = [("2", "0A2", "depan pasar, mohon dibersihkan"), ("1", "0A1", "Sampah menumpuk di ")]
    for number, message_id, text in parts:  # the second part arrives first
        params = vonage_signed(
            {**base, "concat-part": number, "messageId": message_id, "text": text},
            SECRETS["sms_vonage"],
            "sha256",
        )
        response = await k.client.get("/webhooks/sms/vonage?" + urlencode(params))
        assert response.status == 200
    await k.drain()
    _, page = await api(k, "/api/v1/queue", await k.token())
    [report] = page["items"]
    assert report["text"] == "Sampah menumpuk di depan pasar, mohon dibersihkan"
    assert report["incomplete"] is False


async def test_a_lonely_vonage_part_goes_on_incomplete_after_the_timeout(make_kanal):
    k = await make_kanal()  # the test config sets pipeline.sms_parts_timeout_s = 2
    params = vonage_signed(
        {
            "msisdn": "6281234567890",
            "to": "62215550000",
            "type": "text",
            "concat": "true",
            "concat-ref": "9",
            "concat-total": "3",
            "concat-part": "1",
            "messageId": "0B1",
            "text": "Pohon tumbang di ",
            "message-timestamp": "2026-11-27 01:00:00",
        },
        SECRETS["sms_vonage"],
        "sha256",
    )
    assert (await k.client.get("/webhooks/sms/vonage?" + urlencode(params))).status == 200
    await k.drain()
    _, page = await api(k, "/api/v1/queue", await k.token())
    assert page["items"] == []  # still waiting for its siblings; stored all the same
    assert await k.store.count_raw("held") == 1
    time.sleep(2.1)
    await k.drain()
    _, page = await api(k, "/api/v1/queue", await k.token())
    [report] = page["items"]
    assert report["incomplete"] is True and report["text"] == "Pohon tumbang di "


async def test_kannel_get_answers_an_empty_body_and_keeps_the_bytes(make_kanal):
    k = await make_kanal()
    text = "Lampu jalan mati — Jl. Cikini".encode()
    query = urlencode(
        {
            "key": SECRETS["sms_kannel"],
            "id": "uuid-1",
            "from": "+6281234567890",
            "to": "1708",
            "ts": "1764201600",
            "coding": "0",
            "charset": "UTF-8",
            "text": text,
        }
    )
    response = await k.client.get("/webhooks/sms/kannel?" + query)
    assert response.status == 200 and await response.read() == b""
    wrong = await k.client.get(
        "/webhooks/sms/kannel?" + query.replace(SECRETS["sms_kannel"], "nope")
    )
    assert wrong.status == 401
    await k.drain()
    _, page = await api(k, "/api/v1/queue", await k.token())
    [report] = page["items"]
    assert report["text"] == "Lampu jalan mati — Jl. Cikini"
    assert report["owner"] == "office:balai_kota"  # the connector's configured owner


async def test_an_alphanumeric_sender_is_not_a_phone(make_kanal):
    k = await make_kanal()
    await post_generic(k, generic_body("alpha", sender="TELKOMSEL"))
    await post_generic(k, generic_body("short", sender="1708"))
    await k.drain()
    _, page = await api(k, "/api/v1/queue", await k.token())
    for report in page["items"]:
        assert report["reporter"]["phone"] is None
        assert report["reporter"]["channel_user_id"] in ("TELKOMSEL", "1708")


async def test_the_kannel_secret_in_the_url_is_never_stored(make_kanal):
    k = await make_kanal()
    query = urlencode(
        {
            "key": SECRETS["sms_kannel"],
            "id": "uuid-s",
            "from": "+6281234567890",
            "to": "1708",
            "ts": "1764201600",
            "text": "Got mampet",
        }
    )
    assert (await k.client.get("/webhooks/sms/kannel?" + query)).status == 200
    row = await k.store.raw_message(await only_raw_id(k))
    assert row is not None
    assert SECRETS["sms_kannel"].encode() not in row["payload"]
    assert SECRETS["sms_kannel"] not in row["headers"] + (row["message"] or "")
    assert b"key=*" in row["payload"]


async def only_raw_id(k):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from gateway.store.schema import raw_messages

    async with k.store.read() as conn:
        return (await conn.execute(select(raw_messages.c.id))).scalar_one()


async def test_a_generic_sms_is_answered_with_its_ticket_and_a_redelivery_with_the_same(
    make_kanal, db_url
):
    k = await make_kanal(db_url)
    first = await post_generic(k, generic_body("ticketed"))
    assert first.status == 200
    ticket = (await first.json())["ticket"]
    assert re.fullmatch(r"KNL-[0-9A-Z]{4}-[0-9A-Z]{4}", ticket)
    again = await post_generic(k, generic_body("ticketed"))
    assert (await again.json()) == {"ticket": ticket}
