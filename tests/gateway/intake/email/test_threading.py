"""A reply to a report is a follow-up of that report (In-Reply-To, References, or its ticket
in the subject), never a new report; machine mail never threads and never queues."""

from __future__ import annotations

from tests.gateway.intake.email.conftest import all_reports, message, raw_rows, send


async def _original(k):  # type: ignore[no-untyped-def]
    result = await send(k.smtp_port, message("orig"))
    assert result.data and result.data[0] == 250
    await k.drain()
    [report] = await all_reports(k.store)
    return report


async def test_a_reply_by_in_reply_to_becomes_a_follow_up(mail_kanal, db_url):
    k = await mail_kanal(db_url=db_url)
    report = await _original(k)
    reply = message(
        "reply-1",
        subject="Re: Jalan berlubang",
        body="Sudah dua minggu belum diperbaiki.",
        headers="In-Reply-To: <orig@example.id>\r\nReferences: <orig@example.id>\r\n",
    )
    assert (await send(k.smtp_port, reply)).data[0] == 250  # type: ignore[index]
    await k.drain()
    [same] = await all_reports(k.store)
    assert same.id == report.id
    [follow_up] = same.follow_ups
    assert follow_up.channel == "email" and "dua minggu" in follow_up.text
    assert any(h.status == "follow_up" for h in same.history)
    assert same.status == report.status and same.version == report.version + 1
    rows = await raw_rows(k.store)
    assert [r["report_id"] for r in rows] == [report.id, report.id]
    assert follow_up.raw_message_id == rows[1]["id"]


async def test_a_reply_to_a_reply_found_only_in_references_joins_the_same_report(mail_kanal):
    k = await mail_kanal()
    report = await _original(k)
    await send(k.smtp_port, message("r1", headers="In-Reply-To: <orig@example.id>\r\n"))
    await k.drain()
    # The second reply's In-Reply-To names mail kanal never saw (its own ack); References
    # still lead to the first reply, itself part of the report.
    await send(
        k.smtp_port,
        message(
            "r2",
            headers="In-Reply-To: <ack-1@jakarta.go.id>\r\n"
            "References: <r1@example.id> <ack-1@jakarta.go.id>\r\n",
        ),
    )
    await k.drain()
    [same] = await all_reports(k.store)
    assert same.id == report.id and len(same.follow_ups) == 2


async def test_a_reply_naming_the_ticket_in_its_subject_becomes_a_follow_up(mail_kanal):
    k = await mail_kanal()
    report = await _original(k)
    reply = message(
        "t1",
        subject=f"Re: [{report.ticket.lower()}] Jalan berlubang",
        body="Tambahan: lubangnya makin besar.",
    )
    await send(k.smtp_port, reply)
    await k.drain()
    [same] = await all_reports(k.store)
    assert [f.text for f in same.follow_ups] == ["Tambahan: lubangnya makin besar."]


async def test_a_reply_to_unknown_mail_is_a_new_report(mail_kanal):
    k = await mail_kanal()
    await _original(k)
    await send(
        k.smtp_port,
        message(
            "new", headers="In-Reply-To: <never-seen@example.id>\r\n", subject="Re: KNL-ZZZZ-ZZZZ"
        ),
    )
    await k.drain()
    assert len(await all_reports(k.store)) == 2


async def test_original_and_reply_in_one_batch_still_thread(mail_kanal):
    k = await mail_kanal()
    await send(k.smtp_port, message("orig"))
    await send(k.smtp_port, message("same-batch", headers="In-Reply-To: <orig@example.id>\r\n"))
    await k.drain()
    [report] = await all_reports(k.store)
    assert len(report.follow_ups) == 1


async def test_an_auto_reply_to_a_report_is_rejected_as_automated_and_never_queued(mail_kanal):
    k = await mail_kanal()
    report = await _original(k)
    auto = message(
        "ooo",
        subject="Out of office: Jalan berlubang",
        headers="In-Reply-To: <orig@example.id>\r\nAuto-Submitted: auto-replied\r\n",
    )
    await send(k.smtp_port, auto)
    bounce = message(
        "bounce",
        subject=f"Undeliverable: {report.ticket}",
        headers="Return-Path: <>\r\n",
        sender="mailer-daemon@mx.example.id",
    )
    await send(k.smtp_port, bounce)
    await k.drain()
    reports = {r.external_id: r for r in await all_reports(k.store)}
    assert reports["orig@example.id"].follow_ups == []
    for machine in ("ooo@example.id", "bounce@example.id"):
        assert reports[machine].status == "rejected"
        assert reports[machine].rejection == {
            "reason": "automated",
            "note": reports[machine].rejection["note"],
        }
    queue, _ = await k.store.list_reports("province", status=["pending_enrichment"], limit=50)
    assert [r.external_id for r in queue] == ["orig@example.id"]
