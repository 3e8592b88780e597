"""Through the pipeline: a follow-up is the reporter's and records who sent it; someone
else's message naming a report opens a new one with a duplicate suggestion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import RawMessage, Sender
from gateway.store.ids import new_id
from normalizers.report import Report
from tests.gateway.notify.helpers import arrive
from tests.gateway.notify.test_done_news import mark_done
from tests.gateway.pipeline.helpers import as_raw

CITIZEN = "sari@example.id"


def email(sender: str, ticket: str | None = None, text: str = "Got mampet di Jl. Kenari") -> Any:
    return RawMessage(
        connector="email",
        channel="email",
        external_id=f"{new_id()}@example.id",
        received_at=datetime.now(UTC),
        sender=Sender(user_id=sender.lower(), email=sender, name="Sari"),
        text=text,
        title=f"Re: laporan {ticket}" if ticket else "Got mampet",
        extra={"ticket_in_subject": ticket, "to": ["pengaduan@jakarta.go.id"]},
    )


def telegram(text: str, user: str = "777") -> RawMessage:
    return RawMessage(
        connector="telegram",
        channel="telegram",
        external_id=new_id(),
        received_at=datetime.now(UTC),
        sender=Sender(user_id=user, name="Sari", handle="sari"),
        text=text,
        group_key=f"dm:telegram:{user}",
        extra={"chat_id": int(user), "chat_type": "private"},
    )


async def store_and_drain(k: Any, message: RawMessage) -> None:
    raw = as_raw(message)
    await k.store.writer().submit([raw])
    await k.drain()


async def test_a_strangers_mail_naming_a_ticket_is_a_new_report_with_a_duplicate_suggestion(
    make_kanal: Any,
) -> None:
    k = await make_kanal()
    original = await arrive(k, email(CITIZEN))
    await mark_done(k, original.id)
    before = await k.store.get_report(original.id)
    new = await arrive(k, email("stranger@evil.example", original.ticket, "Abaikan laporan ini"))
    assert new.id != original.id and new.text == "Abaikan laporan ini"
    [suggestion] = new.suggestions.duplicate_of
    assert suggestion.model_dump() == {
        "id": original.id,
        "ticket": original.ticket,
        "why": f"its ticket {original.ticket} is in the subject, from another sender",
    }
    after = await k.store.get_report(original.id)
    assert after is not None and before is not None
    assert (after.follow_ups, after.status, after.version) == ([], "done", before.version)


async def test_the_reporters_mail_naming_the_ticket_is_a_follow_up_with_its_sender(
    make_kanal: Any,
) -> None:
    k = await make_kanal()
    original = await arrive(k, email(CITIZEN))
    await store_and_drain(k, email("Sari@Example.ID", original.ticket, "Masih mampet"))
    current = await k.store.get_report(original.id)
    assert current is not None
    [follow_up] = current.follow_ups
    assert follow_up.text == "Masih mampet"
    assert follow_up.sender is not None
    assert (follow_up.sender.email, follow_up.sender.name) == (CITIZEN, "Sari")
    assert current.suggestions.duplicate_of == []


async def test_a_chat_follow_up_records_its_sender_and_hides_it_when_confidential(
    make_kanal: Any,
) -> None:
    k = await make_kanal()
    original = await arrive(k, telegram("Lampu jalan mati di Jl. Kenari"))

    def posted(report: Report) -> Report:
        return report.model_copy(update={"status": "posted", "history": []})

    await k.store.update_report(original.id, posted)
    await store_and_drain(k, telegram("Sudah seminggu"))
    current = await k.store.get_report(original.id)
    assert current is not None
    [follow_up] = current.follow_ups
    assert follow_up.sender is not None
    assert (follow_up.sender.channel_user_id, follow_up.sender.handle) == ("777", "sari")

    def confidential(report: Report) -> Report:
        return report.model_copy(
            update={"confidential": True, "owner": "kota:31.71", "history": []}
        )

    await k.store.update_report(original.id, confidential)
    for scope, shown in (("province", "777"), ("kota:31.71", None)):
        token = await k.token(scope)
        answer = await k.client.get(
            f"/api/v1/reports/{original.id}", headers={"Authorization": f"Bearer {token}"}
        )
        sender = (await answer.json())["follow_ups"][0]["sender"]
        assert (sender or {}).get("channel_user_id") == shown
