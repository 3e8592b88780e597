"""News when it is done: a report the CRM closed is told to the citizen once, on the same
channel, where `notify.done_channels` allows it; a follow-up after done is flagged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.notify.worker import Notifier
from normalizers.report import FollowUp, HistoryEntry, Report
from tests.fakes.twilio_api import FakeTwilioApi
from tests.gateway.notify.helpers import TWILIO_SID, TWILIO_TOKEN, arrive, notification, sms


async def mark_done(k: Any, report_id: str) -> None:
    now = datetime.now(UTC)

    def change(report: Report) -> Report:
        changed = report.model_copy(update={"history": []})
        changed.status = "done"
        changed.history.append(HistoryEntry(at=now, status="done", by="crm", note="closed"))
        return changed

    await k.store.update_report(report_id, change)


async def test_a_done_report_is_told_once_by_sms(make_kanal: Any) -> None:
    k = await make_kanal()
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        section = k.runtime.settings.channels.sms_twilio
        section.account_sid, section.api_base_url = TWILIO_SID, twilio.base_url
        report = await arrive(k, sms())
        n = Notifier(k.runtime)
        await n.drain()
        await mark_done(k, report.id)
        await n.drain()
        await n.drain()
        await n.close()
    assert len(twilio.sent) == 2
    assert "selesai" in twilio.sent[1]["Body"] and report.ticket in twilio.sent[1]["Body"]
    assert (await notification(k, report.id, "done"))["state"] == "sent"
    assert (await notification(k, report.id, "ack"))["state"] == "sent"


async def test_done_news_can_be_limited_to_email(make_kanal: Any) -> None:
    k = await make_kanal(extra='[notify]\ndone_channels = ["email"]\n')
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        section = k.runtime.settings.channels.sms_twilio
        section.account_sid, section.api_base_url = TWILIO_SID, twilio.base_url
        report = await arrive(k, sms())
        await mark_done(k, report.id)
        n = Notifier(k.runtime)
        await n.drain()
        await n.close()
    assert len(twilio.sent) == 1  # the ack only
    assert (await notification(k, report.id, "done"))["error"] == "done_off_for_channel"


async def test_a_follow_up_after_done_is_flagged_for_the_owner_once(make_kanal: Any) -> None:
    k = await make_kanal()
    report = await arrive(k, sms(connector="sms_generic"))
    await mark_done(k, report.id)

    def follow_up(current: Report) -> Report:
        changed = current.model_copy(update={"history": []})
        changed.follow_ups.append(
            FollowUp(at=datetime.now(UTC), channel="sms", text="Masih rusak", raw_message_id="R1")
        )
        return changed

    await k.store.update_report(report.id, follow_up)
    n = Notifier(k.runtime)
    await n.drain()
    await n.drain()
    await n.close()
    current = await k.store.get_report(report.id)
    assert current is not None and current.status == "done"
    flags = [h for h in current.history if h.status == "follow_up_after_done"]
    assert len(flags) == 1 and "R1" in (flags[0].note or "")
    # Flagged for the owner: back in the owner's queue (still done) until an admin has seen it.
    assert current.attention == "follow_up_after_done"
    token = await k.token(current.owner)
    auth = {"Authorization": f"Bearer {token}"}
    queue = await (await k.client.get("/api/v1/queue", headers=auth)).json()
    assert [item["id"] for item in queue["items"]] == [report.id]
    flagged = await (await k.client.get("/api/v1/reports?attention=true", headers=auth)).json()
    assert [item["id"] for item in flagged["items"]] == [report.id]
    seen = await k.client.patch(
        f"/api/v1/reports/{report.id}",
        json={"attention": None},
        headers={**auth, "If-Match": str(current.version)},
    )
    assert seen.status == 200, await seen.text()
    assert (await seen.json())["status"] == "done"
    queue = await (await k.client.get("/api/v1/queue", headers=auth)).json()
    assert queue["items"] == []
