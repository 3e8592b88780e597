"""Acknowledgements by SMS go back through the provider the SMS came from (Twilio, Vonage),
once, with the ticket and the tracking link, and never to short codes or sender names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway.store.schema import outbound
from tests.fakes.twilio_api import FakeTwilioApi
from tests.fakes.vonage_api import FakeVonageApi
from tests.gateway.notify.helpers import (
    CITIZEN,
    OUR_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    arrive,
    notification,
    notifier,
    sms,
)

NOTIFY = """
[notify]
retry_base_s = 0.05
retry_max_delay_s = 0.2
"""


def twilio_settings(k: Any, twilio: FakeTwilioApi) -> None:
    section = k.runtime.settings.channels.sms_twilio
    section.account_sid = TWILIO_SID
    section.api_base_url = twilio.base_url


async def outbound_rows(k: Any) -> list[dict[str, Any]]:
    async with k.store.read() as conn:
        return [dict(r) for r in (await conn.execute(select(outbound))).mappings()]


async def test_a_twilio_sms_gets_one_ack_with_its_ticket_and_tracking_link(make_kanal: Any) -> None:
    k = await make_kanal(extra=NOTIFY)
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        twilio_settings(k, twilio)
        report = await arrive(k, sms())
        n = notifier(k)
        await n.drain()
        await n.drain()  # found again: nothing new is sent
        await n.close()
    assert len(twilio.sent) == 1
    sent = twilio.sent[0]
    assert sent["To"] == CITIZEN and sent["From"] == OUR_NUMBER
    assert report.ticket in sent["Body"]
    assert f"{k.runtime.settings.server.public_url}/track/{report.ticket}" in sent["Body"]
    assert len(sent["Body"]) <= 160
    note = await notification(k, report.id)
    assert note["state"] == "sent" and note["channel"] == "sms" and note["sent_at"]
    [row] = await outbound_rows(k)
    assert row["provider_message_id"] == sent["sid"] and row["attempts"] == 1
    metrics = k.runtime.metrics.render().decode()
    assert 'kanal_notify_messages_total{channel="sms",kind="ack",outcome="sent"} 1.0' in metrics


async def test_wrong_twilio_credentials_fail_the_ack_with_the_providers_error(
    make_kanal: Any,
) -> None:
    k = await make_kanal(extra=NOTIFY)
    async with FakeTwilioApi(TWILIO_SID, "another-token") as twilio:
        twilio_settings(k, twilio)
        report = await arrive(k, sms())
        n = notifier(k)
        await n.drain()
        await n.close()
    assert twilio.sent == [] and len(twilio.requests) == 1  # 401 is not retried
    note = await notification(k, report.id)
    assert note["state"] == "failed" and "401" in note["error"]


async def test_twilio_503_is_retried_with_backoff_then_sent(make_kanal: Any) -> None:
    k = await make_kanal(extra=NOTIFY)
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        twilio_settings(k, twilio)
        twilio.fail_next(503)
        twilio.fail_next(429)
        report = await arrive(k, sms())
        n = notifier(k)
        for _ in range(30):
            await n.drain()
            if twilio.sent:
                break
            import asyncio

            await asyncio.sleep(0.1)
        await n.close()
    assert len(twilio.requests) == 3 and len(twilio.sent) == 1
    assert (await notification(k, report.id))["state"] == "sent"
    [row] = await outbound_rows(k)
    assert row["attempts"] == 3


async def test_an_ack_fails_after_the_maximum_attempts_with_the_providers_error(
    make_kanal: Any,
) -> None:
    import asyncio

    k = await make_kanal(extra=NOTIFY + "max_attempts = 2\n")
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        twilio_settings(k, twilio)
        twilio.fail_next(500, times=5)
        report = await arrive(k, sms())
        n = notifier(k)
        for _ in range(20):
            await n.drain()
            if (await notification(k, report.id))["state"] == "failed":
                break
            await asyncio.sleep(0.1)
        await n.close()
    assert len(twilio.requests) == 2 and twilio.sent == []
    note = await notification(k, report.id)
    assert note["state"] == "failed" and "HTTP 500" in note["error"]


async def test_a_vonage_sms_is_answered_through_vonage(make_kanal: Any) -> None:
    k = await make_kanal(extra=NOTIFY)
    async with FakeVonageApi("vonage-key", "vonage-secret") as vonage:
        section = k.runtime.settings.channels.sms_vonage
        section.api_key, section.api_secret = "vonage-key", "vonage-secret"
        section.api_base_url = vonage.base_url
        report = await arrive(k, sms(connector="sms_vonage", to="62215550000"))
        n = notifier(k)
        await n.drain()
        await n.close()
    assert len(vonage.sent) == 1
    sent = vonage.sent[0]
    assert sent["to"] == CITIZEN.lstrip("+") and sent["from"] == "62215550000"
    assert report.ticket in sent["text"] and "type" not in sent  # GSM-7: a plain text SMS
    assert (await notification(k, report.id))["state"] == "sent"


async def test_short_codes_sender_names_and_noise_get_no_sms(make_kanal: Any) -> None:
    k = await make_kanal(extra=NOTIFY)
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        twilio_settings(k, twilio)
        short = await arrive(k, sms(sender="1708"))
        name = await arrive(k, sms(sender="TELKOMSEL", text="Paket internet Anda aktif"))
        n = notifier(k)
        await n.drain()
        await n.close()
    assert twilio.requests == []
    assert (await notification(k, short.id))["error"] == "short_code"
    assert (await notification(k, name.id))["error"] == "alphanumeric_sender"
    assert (await notification(k, name.id))["state"] == "skipped"


async def test_one_citizen_gets_at_most_three_acks_an_hour(make_kanal: Any) -> None:
    k = await make_kanal(extra=NOTIFY)
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        twilio_settings(k, twilio)
        reports = [await arrive(k, sms(text=f"Jalan berlubang nomor {i}")) for i in range(5)]
        n = notifier(k)
        await n.drain()
        await n.close()
    assert len(twilio.sent) == 3
    states = [(await notification(k, r.id)) for r in reports]
    assert [s["state"] for s in states].count("sent") == 3
    assert [s["error"] for s in states if s["state"] == "skipped"] == ["rate_limited"] * 2


async def test_a_generic_gateway_without_reply_url_skips_the_ack_as_not_configured(
    make_kanal: Any,
) -> None:
    k = await make_kanal(extra=NOTIFY)
    report = await arrive(k, sms(connector="sms_generic"))
    n = notifier(k)
    await n.drain()
    await n.close()
    note = await notification(k, report.id)
    assert note["state"] == "skipped" and note["error"] == "not_configured:sms_generic"
