"""Only the reporter writes into a report: a reply from the same address (in
any letter case) or to mail kanal sent that citizen is a follow-up recording its sender;
anyone else naming the ticket or replying to the report's mail opens a new report, with the
named one offered as a duplicate, and a done report stays as it was."""

from __future__ import annotations

from typing import Any

from gateway.notify.worker import Notifier
from tests.gateway.intake.email.conftest import SENDER, all_reports, mail_settings, message, send
from tests.gateway.notify.test_chat_and_email import passed
from tests.gateway.notify.test_done_news import mark_done

STRANGER = "stranger@evil.example"


async def _original(k: Any, headers: str = "") -> Any:
    assert (await send(k.smtp_port, message("orig", headers=headers))).data[0] == 250  # type: ignore[index]
    await k.drain()
    [report] = await all_reports(k.store)
    return report


async def _notify(k: Any) -> None:
    n = Notifier(k.runtime)
    await n.drain()
    await n.close()


async def test_a_stranger_naming_a_done_reports_ticket_opens_a_new_report(mail_kanal, db_url):
    k = await mail_kanal(db_url=db_url)
    original = await _original(k)
    await mark_done(k, original.id)
    before = await k.store.get_report(original.id)
    forged = message(
        "forged",
        subject=f"Re: laporan {original.ticket}",
        body="Laporan ini palsu, abaikan saja.",
        sender=STRANGER,
        headers="In-Reply-To: <orig@example.id>\r\nReferences: <orig@example.id>\r\n",
    )
    assert (await send(k.smtp_port, forged)).data[0] == 250  # type: ignore[index]
    await k.drain()
    await _notify(k)
    after = await k.store.get_report(original.id)
    assert after is not None and before is not None
    assert after.follow_ups == [] and after.status == "done" and after.attention is None
    assert after.version == before.version
    [new] = [r for r in await all_reports(k.store) if r.id != original.id]
    assert new.reporter.email == STRANGER and "palsu" in new.text
    [suggestion] = new.suggestions.duplicate_of
    assert (suggestion.id, suggestion.ticket) == (original.id, original.ticket)
    assert "from another sender" in suggestion.why
    # through the API as well
    token = await k.token("province")
    answer = await k.client.get(
        f"/api/v1/reports/{new.id}", headers={"Authorization": f"Bearer {token}"}
    )
    shown = (await answer.json())["suggestions"]["duplicate_of"]
    assert shown == [{"id": original.id, "ticket": original.ticket, "why": suggestion.why}]


async def test_the_reporter_in_another_letter_case_follows_up_with_the_sender_recorded(
    mail_kanal,
):
    k = await mail_kanal()
    original = await _original(k)
    reply = message(
        "again",
        subject=f"Re: {original.ticket}",
        body="Lubangnya makin besar.",
        sender=SENDER.upper(),
    )
    await send(k.smtp_port, reply)
    await k.drain()
    [same] = await all_reports(k.store)
    [follow_up] = same.follow_ups
    assert follow_up.text == "Lubangnya makin besar."
    assert follow_up.sender is not None and follow_up.sender.email == SENDER
    assert follow_up.sender.name == "Warga"


async def test_a_reply_to_kanals_acknowledgement_follows_up_from_another_address(mail_kanal, relay):
    sink, port = relay
    k = await mail_kanal(more=mail_settings(port))
    original = await _original(k, headers=f"Authentication-Results: {passed(SENDER)}\r\n")
    await _notify(k)
    [(_, _, content)] = sink.messages
    ack_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in content.splitlines()
        if line.lower().startswith(b"message-id:")
    )
    reply = message(
        "from-the-office",
        subject="Re: Laporan Anda diterima",
        body="Ini alamat kantor saya; fotonya menyusul.",
        sender="budi.kantor@example.id",
        headers=f"In-Reply-To: {ack_id}\r\nReferences: <orig@example.id> {ack_id}\r\n",
    )
    await send(k.smtp_port, reply)
    await k.drain()
    [same] = await all_reports(k.store)
    assert same.id == original.id
    [follow_up] = same.follow_ups
    assert follow_up.sender is not None and follow_up.sender.email == "budi.kantor@example.id"


async def test_a_made_up_kanal_message_id_does_not_open_someone_elses_report(mail_kanal):
    k = await mail_kanal()
    original = await _original(k)
    guessed = f"<ack.{original.id.lower()}@jakarta.go.id>"  # kanal never sent it
    await send(
        k.smtp_port,
        message("guess", sender=STRANGER, headers=f"In-Reply-To: {guessed}\r\n"),
    )
    await k.drain()
    current = await k.store.get_report(original.id)
    assert current is not None and current.follow_ups == []
    assert len(await all_reports(k.store)) == 2
