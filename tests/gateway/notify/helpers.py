"""Helpers for the notify tests: messages arriving through the store and the pipeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import RawMessage, Sender
from gateway.notify.worker import Notifier
from gateway.store import NewRaw
from gateway.store.ids import new_id
from normalizers.report import Report

TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-auth-token"  # tests/conftest.py SECRETS: the connector's auth token
CITIZEN = "+6281234567890"
OUR_NUMBER = "+62215550000"


async def arrive(k: Any, message: RawMessage, intake: str = "webhook") -> Report:
    """Store a raw message as a connector would, run the pipeline, return its report."""
    raw = NewRaw(
        id=new_id(),
        connector=message.connector,
        channel=message.channel,
        intake=intake,
        external_id=message.external_id,
        received_at=message.received_at,
        payload=b"{}",
        headers={},
        message=message.to_json(),
    )
    [stored] = await k.store.writer().submit([raw])
    await k.drain()
    report_id = await k.store.report_id_by_ticket(stored.ticket)
    assert report_id is not None, "the pipeline made no report"
    report = await k.store.get_report(report_id)
    assert report is not None
    return report


def sms(
    sender: str = CITIZEN,
    text: str = "Lampu PJU mati di Jl. Kramat Raya",
    connector: str = "sms_twilio",
    to: str = OUR_NUMBER,
    when: datetime | None = None,
) -> RawMessage:
    key = "To" if connector == "sms_twilio" else "to"
    return RawMessage(
        connector=connector,
        channel="sms",
        external_id=new_id(),
        received_at=when or datetime.now(UTC),
        sender=Sender(user_id=sender, phone=sender),
        text=text,
        extra={key: to},
    )


async def notification(k: Any, report_id: str, kind: str = "ack") -> dict[str, Any]:
    report = await k.store.get_report(report_id)
    assert report is not None
    found = [n for n in report.notifications if n.kind == kind]
    assert len(found) == 1, report.notifications
    return found[0].model_dump(mode="json")


def notifier(k: Any, **senders: Any) -> Notifier:
    made = Notifier(k.runtime)
    made.senders.update(senders)
    return made
