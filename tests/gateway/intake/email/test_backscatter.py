"""Backscatter: anyone can write any From. Mail is answered only when the receiving mail
host the operator trusts says the sender passed (Authentication-Results), at most
`notify.ack_per_day` acknowledgements a day to one address, and never with the subject the
sender wrote."""

from __future__ import annotations

from typing import Any

from tests.gateway.intake.email.conftest import SENDER, all_reports, mail_settings, message, send
from tests.gateway.notify.helpers import arrive, notification, notifier
from tests.gateway.notify.test_chat_and_email import TRUSTED_MX, mail, passed

FORGED_SUBJECT = "Menangkan hadiah di http://evil.example/klik"


async def notify_all(k: Any) -> None:
    n = notifier(k)
    await n.drain()
    await n.close()


async def test_forged_mail_through_smtp_gets_no_acknowledgement(mail_kanal, relay):
    sink, port = relay
    k = await mail_kanal(more=mail_settings(port))
    forged = [
        message("no-results", subject=FORGED_SUBJECT),
        message(
            "foreign-host",
            subject=FORGED_SUBJECT,
            headers=f"Authentication-Results: {passed(SENDER, 'mx.evil.example')}\r\n",
        ),
        message(
            "not-aligned",
            subject=FORGED_SUBJECT,
            headers=f"Authentication-Results: {TRUSTED_MX}; spf=pass smtp.mailfrom=x@evil.example"
            "\r\n",
        ),
    ]
    for raw in forged:
        assert (await send(k.smtp_port, raw)).data[0] == 250  # type: ignore[index]
    await k.drain()
    await notify_all(k)
    assert sink.messages == []
    reports = await all_reports(k.store)
    assert len(reports) == 3  # the complaints themselves are taken in as always
    for report in reports:
        note = await notification(k, report.id)
        assert (note["state"], note["error"]) == ("skipped", "sender_not_verified")


async def test_verified_mail_through_smtp_is_acknowledged_without_its_subject(mail_kanal, relay):
    sink, port = relay
    k = await mail_kanal(more=mail_settings(port))
    raw = message(
        "verified",
        subject=FORGED_SUBJECT,
        headers=f"Authentication-Results: {passed(SENDER)}\r\n",
    )
    assert (await send(k.smtp_port, raw)).data[0] == 250  # type: ignore[index]
    await k.drain()
    await notify_all(k)
    [report] = await all_reports(k.store)
    [(_, rcpt, content)] = sink.messages
    assert rcpt == [SENDER]
    assert report.ticket.encode() in content
    assert b"evil.example" not in content and b"hadiah" not in content.lower()
    assert (await notification(k, report.id))["state"] == "sent"


async def test_without_a_trusted_mail_host_no_mail_is_answered(make_kanal, relay):
    _, port = relay
    k = await make_kanal()
    section = k.runtime.settings.channels.email
    section.recipients, section.smtp_relay = ["pengaduan@jakarta.go.id"], f"127.0.0.1:{port}"
    report = await arrive(k, mail())  # a pass, but from a host nobody said to trust
    await notify_all(k)
    assert (await notification(k, report.id))["error"] == "sender_not_verified"


async def test_one_address_gets_at_most_ack_per_day_acknowledgements(make_kanal, relay):
    sink, port = relay
    k = await make_kanal(extra="[notify]\nper_hour = 50\nack_per_day = 2\n")
    section = k.runtime.settings.channels.email
    section.recipients, section.smtp_relay = ["pengaduan@jakarta.go.id"], f"127.0.0.1:{port}"
    section.trusted_authserv_ids = [TRUSTED_MX]
    reports = [await arrive(k, mail()) for _ in range(4)]
    await notify_all(k)
    assert len(sink.messages) == 2
    states = [await notification(k, r.id) for r in reports]
    assert [s["state"] for s in states] == ["sent", "sent", "skipped", "skipped"]
    assert {s["error"] for s in states[2:]} == {"rate_limited:ack_per_day"}
